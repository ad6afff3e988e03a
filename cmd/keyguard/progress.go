package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/shared/restore"
	"github.com/keyguard-dev/keyguard/shared/upload"
)

// bar shows one transfer's progress on w: on a terminal, one line redrawn five times a second
// with a bar, the bytes, the rate and the time left; elsewhere (a pipe, a log file) a plain
// line every plainEvery. The count is upload.Progress, the same the runner logs.
type bar struct {
	w    io.Writer
	tty  bool
	name string
	p    *upload.Progress
	now  func() time.Time

	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
}

const (
	ttyEvery   = 200 * time.Millisecond
	plainEvery = 10 * time.Second
	barWidth   = 24
)

// startBar starts showing the transfer of name (total bytes, -1 when unknown).
func startBar(w io.Writer, tty bool, name string, total int64, now func() time.Time) *bar {
	b := &bar{w: w, tty: tty, name: name, p: upload.NewProgress(total, now()), now: now, stop: make(chan struct{}), done: make(chan struct{})}
	every := plainEvery
	if tty {
		every = ttyEvery
	}
	go func() {
		defer close(b.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.draw(false)
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

// Write counts bytes of the transfer.
func (b *bar) Write(p []byte) (int, error) { return b.p.Write(p) }

// finish stops the bar and leaves its last state on its own line.
func (b *bar) finish() {
	close(b.stop)
	<-b.done
	b.draw(true)
}

func (b *bar) draw(last bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.p.Report(b.now())
	if !b.tty {
		fmt.Fprintf(b.w, "%s: %s\n", b.name, r)
		return
	}
	cells := ""
	if pc := r.Percent(); pc >= 0 {
		n := int(pc / 100 * barWidth)
		cells = "[" + strings.Repeat("=", n) + strings.Repeat(" ", barWidth-n) + "] "
	}
	line := fmt.Sprintf("\r%s %s%s", b.name, cells, r)
	fmt.Fprintf(b.w, "%-100s", line)
	if last {
		fmt.Fprintln(b.w)
	}
}

// barDownloader counts what a Downloader writes on a bar.
type barDownloader struct {
	d restore.Downloader
	b *bar
}

func (d barDownloader) Download(ctx context.Context, key string, w io.Writer) (upload.Object, error) {
	return d.d.Download(ctx, key, io.MultiWriter(d.b, w))
}
