package upload_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/upload"
)

func TestProgressReport(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		total   int64
		bytes   int64
		elapsed time.Duration
		want    upload.Report
		line    string
	}{
		{"known size", 100 * mib, 25 * mib, 10 * time.Second,
			upload.Report{Bytes: 25 * mib, Total: 100 * mib, Elapsed: 10 * time.Second, Rate: 2.5 * mib, ETA: 30 * time.Second},
			"25.0 MiB of 100.0 MiB (25%), 2.5 MiB/s, 30s left"},
		{"unknown size", -1, 3 * mib, 2 * time.Second,
			upload.Report{Bytes: 3 * mib, Total: -1, Elapsed: 2 * time.Second, Rate: 1.5 * mib, ETA: -1},
			"3.0 MiB, 1.5 MiB/s"},
		{"no time yet", 10, 0, 0, upload.Report{Total: 10, ETA: -1}, "0 B of 10 B (0%), 0 B/s"},
		{"done", 4 * mib, 4 * mib, time.Second,
			upload.Report{Bytes: 4 * mib, Total: 4 * mib, Elapsed: time.Second, Rate: 4 * mib, ETA: 0},
			"4.0 MiB of 4.0 MiB (100%), 4.0 MiB/s, 0s left"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := upload.NewProgress(tc.total, t0)
			if _, err := p.Write(make([]byte, tc.bytes)); err != nil {
				t.Fatal(err)
			}
			got := p.Report(t0.Add(tc.elapsed))
			if got != tc.want {
				t.Errorf("Report = %+v, want %+v", got, tc.want)
			}
			if got.String() != tc.line {
				t.Errorf("String = %q, want %q", got.String(), tc.line)
			}
		})
	}
}

// slowReader gives 1 MiB per Read and moves the fake clock one second per MiB, as a link of
// 1 MiB/s would: the time a chunk took passes when the next one is asked for.
type slowReader struct {
	r       io.Reader
	clk     *clock.Fake
	pending int
}

func (s *slowReader) Read(p []byte) (int, error) {
	s.clk.Advance(time.Duration(s.pending) * time.Second / mib)
	n, err := s.r.Read(p[:min(len(p), mib)])
	s.pending = n
	return n, err
}

// clockWriter moves the fake clock one second per MiB written.
type clockWriter struct{ clk *clock.Fake }

func (c clockWriter) Write(p []byte) (int, error) {
	c.clk.Advance(time.Duration(len(p)) * time.Second / mib)
	return len(p), nil
}

// progressLines returns the progress lines logged as JSON, decoded.
func progressLines(t *testing.T, buf *bytes.Buffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestLongTransfersLogProgress: an upload and a download of 40 MiB at 1 MiB/s log a line every
// 10 s with bytes, total, percent, rate and ETA; a short transfer logs none.
func TestLongTransfersLogProgress(t *testing.T) {
	const size = 40 * mib
	clk := clock.NewFake(time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	u := newUploader(t, newFake(), upload.Options{PartSize: upload.MinPartSize, Concurrency: 2, Logger: log, ProgressEvery: 10 * time.Second, Clock: clk})
	ctx := context.Background()
	if _, err := u.Upload(ctx, "images/db1/x", &slowReader{r: stream(7, size), clk: clk}, size); err != nil {
		t.Fatal(err)
	}
	check := func(lines []map[string]any, key string, known bool) {
		t.Helper()
		if len(lines) != 3 && len(lines) != 4 { // at 10, 20, 30 s (and 40 s, the last byte)
			t.Fatalf("%d progress lines, want one per 10 s of 40 s: %v", len(lines), lines)
		}
		first := lines[0]
		if first["key"] != key || first["bytes"] != float64(10*mib) || first["mib_per_s"] != 1.0 || first["level"] != "INFO" {
			t.Errorf("first line: %v", first)
		}
		if known && (first["total"] != float64(size) || first["percent"] != 25.0 || first["eta_s"] != 30.0) {
			t.Errorf("first line of a transfer of known size: %v", first)
		}
		if !known && (first["total"] != nil || first["eta_s"] != nil) {
			t.Errorf("first line of a transfer of unknown size: %v", first)
		}
	}
	check(progressLines(t, &buf, "upload progress"), "kg/images/db1/x", true)

	buf.Reset()
	if _, err := u.Upload(ctx, "images/db1/y", &slowReader{r: stream(8, size), clk: clk}, -1); err != nil {
		t.Fatal(err)
	}
	check(progressLines(t, &buf, "upload progress"), "kg/images/db1/y", false)

	buf.Reset()
	if _, err := u.Download(ctx, "images/db1/x", clockWriter{clk}); err != nil {
		t.Fatal(err)
	}
	check(progressLines(t, &buf, "download progress"), "kg/images/db1/x", true)

	buf.Reset()
	if _, err := u.Download(ctx, "images/db1/x", io.Discard); err != nil { // no time passes
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "progress") {
		t.Errorf("a transfer shorter than the interval logged progress:\n%s", buf.String())
	}
	clk.Advance(time.Hour)
	if strings.Contains(buf.String(), "progress") {
		t.Errorf("a finished transfer kept logging:\n%s", buf.String())
	}
}
