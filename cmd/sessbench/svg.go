package main

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// The -svg plot is the classic HdrHistogram percentile plot: latency on a
// log axis against the percentile on a log axis of 1/(1-p), so 90%, 99%,
// 99.9% ... are equally spaced and the tail gets as much room as the body.
// It is written by hand to keep the harness free of dependencies.

// plotSeries is one line of the plot.
type plotSeries struct {
	name string
	h    *hist
}

type plot struct {
	title, subtitle string
	series          []plotSeries
}

// Geometry, in SVG user units.
const (
	svgWidth, svgHeight = 900, 540
	plotLeft, plotTop   = 80, 70
	plotRight           = 660 // the legend goes to the right of this
	plotBottom          = 480
	svgStep             = 0.02 // decades of 1/(1-p) between drawn points
)

var svgColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// latencyPlot draws a run's latencies, one line per operation (and per
// phase with -snapshot-every).
func latencyPlot(c runConfig, r *runResult) plot {
	dist := c.Dist
	if dist == "zipf" {
		dist = fmt.Sprintf("zipf s=%.2f", c.ZipfS)
	}
	sync := "sync " + c.Sync
	if c.memory {
		sync = "in memory"
	}
	title := fmt.Sprintf("sessbench run: %s sessions × %d B, %s, %s, %.0f%% Get, %d workers, %s",
		si(float64(c.Sessions)), c.Data, sync, dist, c.Read*100, c.Workers, c.Duration)
	if c.SnapshotEvery > 0 {
		title += fmt.Sprintf(", snapshot every %s", c.SnapshotEvery)
	}
	env := r.Environment
	sub := fmt.Sprintf("%s %s/%s, %d CPUs, GOMAXPROCS %d", env.GoVersion, env.OS, env.Arch, env.CPUs, env.GOMAXPROCS)
	if env.LoadAverage != "" {
		sub += ", load average " + env.LoadAverage
	}
	return plot{title: title, subtitle: sub, series: r.plot}
}

func writeSVGFile(path string, p plot) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := renderSVG(f, p); err != nil {
		_ = f.Close() // the write failed already; that is the error to report
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// renderSVG writes p as a standalone SVG document.
func renderSVG(w io.Writer, p plot) error {
	bw := bufio.NewWriter(w)
	// The x axis reaches the decade that holds the largest count, where the
	// last point (the maximum) sits; y spans whole decades of latency.
	var n uint64
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range p.series {
		n = max(n, s.h.n)
		if s.h.n > 0 {
			lo = min(lo, float64(max(s.h.quantile(0), 1)))
			hi = max(hi, float64(max(s.h.max, 1)))
		}
	}
	xDecades := math.Max(1, math.Ceil(math.Log10(float64(max(n, 10)))))
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	yLo, yHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yHi <= yLo {
		yHi = yLo + 1
	}
	px := func(decades float64) float64 { return plotLeft + decades/xDecades*(plotRight-plotLeft) }
	py := func(ns float64) float64 {
		return plotBottom - (math.Log10(math.Max(ns, 1))-yLo)/(yHi-yLo)*(plotBottom-plotTop)
	}

	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgWidth, svgHeight)
	text(bw, svgWidth/2, 24, "middle", 15, p.title)
	text(bw, svgWidth/2, 44, "middle", 11, p.subtitle)

	// Grid and tick labels.
	for d := 0.0; d <= xDecades; d++ {
		x := px(d)
		fmt.Fprintf(bw, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, plotTop, x, plotBottom)
		text(bw, x, plotBottom+18, "middle", 12, percentileLabel(d))
	}
	for d := yLo; d <= yHi; d++ {
		y := py(math.Pow(10, d))
		fmt.Fprintf(bw, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, y, plotRight, y)
		text(bw, plotLeft-8, y+4, "end", 12, decadeLabel(int(d)))
	}
	fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n",
		plotLeft, plotTop, plotRight-plotLeft, plotBottom-plotTop)
	text(bw, (plotLeft+plotRight)/2, plotBottom+42, "middle", 13, "percentile")
	fmt.Fprintf(bw, `<text x="20" y="%d" text-anchor="middle" font-size="13" transform="rotate(-90 20 %d)">latency</text>`+"\n",
		(plotTop+plotBottom)/2, (plotTop+plotBottom)/2)

	for i, s := range p.series {
		color := svgColors[i%len(svgColors)]
		if s.h.n > 0 {
			fmt.Fprintf(bw, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, curve(s.h, px, py))
		}
		ly := float64(plotTop + 10 + 22*i)
		fmt.Fprintf(bw, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n",
			plotRight+15, ly, plotRight+40, ly, color)
		text(bw, plotRight+46, ly+4, "start", 12, s.name)
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

// curve returns a series' points: the percentile every svgStep decades up
// to the last one its count resolves, then the maximum.
func curve(h *hist, px, py func(float64) float64) string {
	var b strings.Builder
	last := math.Log10(float64(h.n))
	for d := 0.0; d < last; d += svgStep {
		q := 1 - math.Pow(10, -d)
		fmt.Fprintf(&b, "%.1f,%.1f ", px(d), py(float64(h.quantile(q))))
	}
	fmt.Fprintf(&b, "%.1f,%.1f", px(last), py(float64(h.max)))
	return b.String()
}

// percentileLabel names the percentile d decades along the axis: 0%, 90%,
// 99%, 99.9%, ...
func percentileLabel(d float64) string {
	switch n := int(d); n {
	case 0:
		return "0%"
	case 1:
		return "90%"
	default:
		return "99" + strings.TrimSuffix("."+strings.Repeat("9", n-2), ".") + "%"
	}
}

// decadeLabel names 10^d nanoseconds: 1ns, 10ns, ... 1µs, ... 1s, 10s.
func decadeLabel(d int) string {
	units := []string{"ns", "µs", "ms", "s"}
	u := min(d/3, len(units)-1)
	return "1" + strings.Repeat("0", d-3*u) + units[u]
}

func text(w io.Writer, x, y float64, anchor string, size int, s string) {
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d">`, x, y, anchor, size)
	_ = xml.EscapeText(w, []byte(s))
	fmt.Fprintln(w, "</text>")
}
