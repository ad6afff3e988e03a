package sim

import (
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// timeline is what the SVG of one database shows.
type timeline struct {
	name      string
	sizeGiB   int64
	start     time.Time
	end       time.Time
	rotations []time.Time
	rewraps   []span
	windows   []span
	suspended []span
	kg        []bar
	alerts    []time.Time
	cron      []bar
}

type bar struct {
	from, to time.Time
	kind     string // ok, failed, rewrap, discarded, hung, bad
	label    string
}

var barColors = map[string]string{"ok": "#2e7d32", "failed": "#c62828", "rewrap": "#ef6c00", "discarded": "#6a1b9a", "hung": "#37474f", "bad": "#ad1457"}

func (s *Sim) timeline(name string, c *cronDB) timeline {
	d := s.or.dbs[name]
	end := s.now()
	t := timeline{name: name, sizeGiB: d.tr.Size / gib, start: s.tr.Start, end: end, windows: d.windows, suspended: d.tr.Key.Suspended}
	if !d.windowFrom.IsZero() && (len(d.windows) == 0 || d.windows[len(d.windows)-1].from != d.windowFrom) {
		t.windows = append(t.windows, span{d.windowFrom, end})
	}
	for i, r := range d.tr.Key.Rotations {
		if r.At.After(end) {
			break
		}
		t.rotations = append(t.rotations, r.At)
		to := d.tr.rewrapEnd[i+1]
		if to.IsZero() || (i+1 < len(d.tr.Key.Rotations) && d.tr.Key.Rotations[i+1].At.Before(to)) {
			if i+1 < len(d.tr.Key.Rotations) {
				to = d.tr.Key.Rotations[i+1].At
			}
		}
		t.rewraps = append(t.rewraps, span{r.At, to})
	}
	for _, j := range d.jobs {
		kind := "ok"
		switch {
		case j.att.Hang:
			kind = "hung"
		case j.att.Rewrap:
			kind = "rewrap"
		case j.att.Discard:
			kind = "discarded"
		case j.att.Class != "":
			kind = "failed"
		}
		if j.state == jobCancelled && kind == "ok" {
			kind = "failed"
		}
		t.kg = append(t.kg, bar{from: j.at, to: j.at.Add(j.att.Duration), kind: kind, label: fmt.Sprintf("%s %s %s", j.run.RunID, j.typ, kind)})
	}
	for _, id := range sortedKeys(s.or.alerts) {
		if a := s.or.alerts[id]; a.db == name && a.sent {
			t.alerts = append(t.alerts, a.sentAt)
		}
	}
	for _, im := range c.images {
		kind := "ok"
		if im.bad {
			kind = "bad"
		}
		t.cron = append(t.cron, bar{from: im.start, to: im.end, kind: kind, label: fmt.Sprintf("%s %s", im.typ, kind)})
	}
	return t
}

const (
	svgWidth = 1600.0
	svgLeft  = 90.0
)

// WriteSVG writes one SVG timeline per database into dir, and an index.html showing them all.
func (r *Report) WriteSVG(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var idx strings.Builder
	fmt.Fprintf(&idx, "<!doctype html><meta charset=utf-8><title>keyguard simulate, seed %d</title><body style=\"font-family:sans-serif\">\n", r.Seed)
	fmt.Fprintf(&idx, "<h1>keyguard simulate: seed %d, %d databases, %d days, faults %s</h1>\n", r.Seed, r.Databases, r.Days, r.Faults)
	for _, t := range r.timelines {
		f, err := os.Create(filepath.Join(dir, t.name+".svg"))
		if err != nil {
			return err
		}
		werr := t.write(f)
		if err := f.Close(); err != nil || werr != nil {
			return fmt.Errorf("write %s.svg: %w", t.name, maxErr(werr, err))
		}
		fmt.Fprintf(&idx, "<p><img src=%q alt=%q></p>\n", t.name+".svg", t.name)
	}
	return os.WriteFile(filepath.Join(dir, "index.html"), []byte(idx.String()), 0o644)
}

func maxErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (t timeline) write(w io.Writer) error {
	span := t.end.Sub(t.start)
	x := func(at time.Time) float64 {
		return svgLeft + (svgWidth-svgLeft-10)*float64(at.Sub(t.start))/float64(span)
	}
	wd := func(a, b time.Time) float64 { return max(x(b)-x(a), 0.8) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="150" font-family="sans-serif" font-size="11">`+"\n", svgWidth)
	fmt.Fprintf(&b, `<text x="4" y="14" font-weight="bold">%s (%d GiB)</text>`+"\n", t.name, t.sizeGiB)
	for m := time.Date(t.start.Year(), t.start.Month(), 1, 0, 0, 0, 0, time.UTC); m.Before(t.end); m = m.AddDate(0, 1, 0) {
		if m.Before(t.start) {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="20" x2="%.1f" y2="135" stroke="#ddd"/><text x="%.1f" y="146" fill="#777">%s</text>`+"\n", x(m), x(m), x(m)+2, m.Format("Jan 2"))
	}
	lane := func(y float64, label string) {
		fmt.Fprintf(&b, `<text x="4" y="%.0f" fill="#333">%s</text>`+"\n", y+10, label)
	}
	lane(22, "key")
	for _, s := range t.suspended {
		fmt.Fprintf(&b, `<rect x="%.1f" y="22" width="%.1f" height="12" fill="#000"><title>key suspended</title></rect>`+"\n", x(s.from), wd(s.from, s.to))
	}
	for _, s := range t.rewraps {
		fmt.Fprintf(&b, `<rect x="%.1f" y="24" width="%.1f" height="8" fill="#ffcc80"><title>Db2 re-wrapping %s to %s</title></rect>`+"\n",
			x(s.from), wd(s.from, s.to), s.from.Format(time.RFC3339), s.to.Format(time.RFC3339))
	}
	for _, r := range t.rotations {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="20" x2="%.1f" y2="110" stroke="#e65100" stroke-width="1"><title>rotation %s</title></line>`+"\n", x(r), x(r), r.Format(time.RFC3339))
	}
	lane(40, "window")
	for _, s := range t.windows {
		fmt.Fprintf(&b, `<rect x="%.1f" y="40" width="%.1f" height="12" fill="#90caf9"><title>rotation window %s to %s</title></rect>`+"\n",
			x(s.from), wd(s.from, s.to), s.from.Format(time.RFC3339), s.to.Format(time.RFC3339))
	}
	lane(58, "keyguard")
	for _, k := range t.kg {
		fmt.Fprintf(&b, `<rect x="%.1f" y="58" width="%.1f" height="14" fill="%s"><title>%s %s</title></rect>`+"\n",
			x(k.from), wd(k.from, k.to), barColors[k.kind], k.from.Format(time.RFC3339), html.EscapeString(k.label))
	}
	lane(78, "alerts")
	for _, a := range t.alerts {
		fmt.Fprintf(&b, `<path d="M%.1f 90 l-4 -10 h8 z" fill="#c62828"><title>alert delivered %s</title></path>`+"\n", x(a), a.Format(time.RFC3339))
	}
	lane(96, "cron script")
	for _, k := range t.cron {
		fmt.Fprintf(&b, `<rect x="%.1f" y="96" width="%.1f" height="14" fill="%s"><title>%s %s</title></rect>`+"\n",
			x(k.from), wd(k.from, k.to), barColors[k.kind], k.from.Format(time.RFC3339), html.EscapeString(k.label))
	}
	lx := svgLeft
	for _, k := range []string{"ok", "failed", "rewrap", "discarded", "hung", "bad"} {
		fmt.Fprintf(&b, `<rect x="%.0f" y="118" width="10" height="10" fill="%s"/><text x="%.0f" y="127">%s</text>`+"\n", lx, barColors[k], lx+13, k)
		lx += 90
	}
	fmt.Fprintf(&b, `<rect x="%.0f" y="118" width="10" height="10" fill="#90caf9"/><text x="%.0f" y="127">rotation window</text>`+"\n", lx, lx+13)
	fmt.Fprintf(&b, `<rect x="%.0f" y="118" width="10" height="10" fill="#ffcc80"/><text x="%.0f" y="127">Db2 re-wrapping</text>`+"\n", lx+130, lx+143)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
