package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type svgStats struct {
	polylines int
	texts     []string
}

// checkSVG parses r as XML to its end and returns what it holds.
func checkSVG(t *testing.T, r io.Reader) svgStats {
	t.Helper()
	var st svgStats
	d := xml.NewDecoder(r)
	d.Strict = true
	root := ""
	inText := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "well-formed XML")
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Local
				assert.Equal(t, "http://www.w3.org/2000/svg", el.Name.Space)
			}
			inText = el.Name.Local == "text"
			if el.Name.Local == "polyline" {
				st.polylines++
			}
		case xml.CharData:
			if inText {
				st.texts = append(st.texts, string(el))
			}
		case xml.EndElement:
			inText = false
		}
	}
	require.Equal(t, "svg", root)
	return st
}

func TestSVGPlot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var get, update, empty hist
	for range 100000 {
		get.record(uint64(200 + r.ExpFloat64()*300))
		update.record(uint64(3000 + r.ExpFloat64()*50000))
	}
	p := plot{title: `run: 1M sessions <zipf> & "quotes"`, subtitle: "go", series: []plotSeries{
		{name: "Get", h: &get}, {name: "Update", h: &update}, {name: "nothing", h: &empty}}}
	var buf bytes.Buffer
	require.NoError(t, renderSVG(&buf, p))
	st := checkSVG(t, &buf)
	assert.Equal(t, 2, st.polylines, "one line per operation that ran")
	all := strings.Join(st.texts, "|")
	for _, want := range []string{p.title, "Get", "Update", "0%", "90%", "99%", "99.9%", "99.99%", "percentile", "latency"} {
		assert.Contains(t, all, want)
	}

	buf.Reset()
	require.NoError(t, renderSVG(&buf, plot{title: "empty"}))
	checkSVG(t, &buf)
}

func TestPercentileLabels(t *testing.T) {
	for d, want := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"} {
		assert.Equal(t, want, percentileLabel(float64(d)))
	}
}

func TestDecadeLabels(t *testing.T) {
	for d, want := range []string{"1ns", "10ns", "100ns", "1µs", "10µs", "100µs", "1ms", "10ms", "100ms", "1s", "10s", "100s", "1000s"} {
		assert.Equal(t, want, decadeLabel(d))
	}
}
