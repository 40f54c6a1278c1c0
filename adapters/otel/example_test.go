package sessotel_test

import (
	"context"
	"fmt"
	"log"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	sessotel "github.com/sesscache/sesscache/adapters/otel"
	"github.com/sesscache/sesscache/engine"
)

func Example() {
	// The program's SDK pipeline; a ManualReader stands in for an exporter
	// such as OTLP or Prometheus.
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	opts := sessotel.Options{MeterProvider: mp}

	rec, err := sessotel.NewRecorder(opts)
	if err != nil {
		log.Fatal(err)
	}
	store, err := engine.Open(engine.Options{Recorder: rec})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	reg, err := sessotel.Observe(store, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()

	s, _ := store.Create(context.Background(), engine.CreateOptions{UserID: "alice"})
	store.Get(s.ID())
	store.Get(s.ID())

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			if m.Name == "sesscache.session.live" {
				fmt.Println(m.Name, d.DataPoints[0].Value)
			}
			if m.Name == "sesscache.lookups" {
				for _, dp := range d.DataPoints {
					if r, _ := dp.Attributes.Value("result"); r.AsString() == "hit" {
						fmt.Println(m.Name, "hit", dp.Value)
					}
				}
			}
		case metricdata.Histogram[float64]:
			if m.Name == "sesscache.write.duration" {
				fmt.Println(m.Name, "count", d.DataPoints[0].Count)
			}
		}
	}
	// Unordered output:
	// sesscache.lookups hit 2
	// sesscache.session.live 1
	// sesscache.write.duration count 1
}
