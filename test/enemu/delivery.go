package enemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Subscription sends matching notifications to one HTTP destination (a Code Engine app).
type Subscription struct {
	// Name identifies the subscription; it is unique within an Emulator.
	Name string
	// Types and TypePrefix select notifications by type: a notification matches when its type
	// is in Types or starts with TypePrefix. With both empty every type matches.
	Types      []string
	TypePrefix string
	// SourceIDs, when not empty, also requires the notification's ibmensourceid to be listed.
	SourceIDs []string
	// URL is the destination, http or https.
	URL string
	// Headers are sent with every delivery (EN's custom and sensitive headers, e.g.
	// Authorization: Bearer <secret>). Their values are never logged or recorded.
	Headers map[string]string

	// What the admin API lists (see admin.go); none of it changes delivery.
	//
	// Topic names the topic the subscription hangs on (Name when empty). Subscriptions naming
	// the same topic share it, and a topic outlives its subscriptions.
	Topic string
	// Schedule, for a subscription fed by a periodic-timer source, is the rule's cron
	// expression.
	Schedule string
	// NotificationFilter is shown on the topic's rules (it does not filter here).
	NotificationFilter string
	// Destination describes where the deliveries go. A subscription without a URL delivers to
	// a person (an email, Slack or PagerDuty destination): its deliveries are recorded as
	// delivered at once, with no HTTP attempt.
	Destination Destination
}

// Destination is how the admin API shows a subscription's destination.
type Destination struct {
	// Name defaults to the subscription's name.
	Name string
	// Type is ibmce (the default when the subscription has a URL), smtp_ibm, slack, webhook,
	// pagerduty, ...
	Type string
	// CEType is "application" (the default for ibmce) or "job"; JobName names the job.
	CEType, JobName string
	// Subscribed and Invited are an email subscription's addresses.
	Subscribed, Invited []string
}

func (s Subscription) matches(n Notification) bool {
	if len(s.SourceIDs) > 0 && !slices.Contains(s.SourceIDs, n.SourceID) {
		return false
	}
	if len(s.Types) == 0 && s.TypePrefix == "" {
		return true
	}
	return slices.Contains(s.Types, n.Type) || (s.TypePrefix != "" && strings.HasPrefix(n.Type, s.TypePrefix))
}

// Subscribe adds a subscription. Notifications accepted afterwards are delivered to it.
func (e *Emulator) Subscribe(s Subscription) error {
	if strings.TrimSpace(s.Name) == "" {
		return errors.New("subscribe: name is required")
	}
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "" && s.Destination.Type != "" && s.Destination.Type != "ibmce":
		// a person's destination: nothing to call
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("subscribe %s: url must be an absolute http(s) URL", s.Name)
	}
	if s.Destination.Type == "" {
		s.Destination.Type = "ibmce"
	}
	if s.Destination.Type == "ibmce" && s.Destination.CEType == "" {
		s.Destination.CEType = "application"
	}
	s.Destination.Subscribed = slices.Clone(s.Destination.Subscribed)
	s.Destination.Invited = slices.Clone(s.Destination.Invited)
	s.Types = slices.Clone(s.Types)
	s.SourceIDs = slices.Clone(s.SourceIDs)
	h := make(map[string]string, len(s.Headers))
	for k, v := range s.Headers {
		h[k] = v
	}
	s.Headers = h
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, old := range e.subs {
		if old.Name == s.Name {
			return fmt.Errorf("subscribe %s: name already used", s.Name)
		}
	}
	e.subs = append(e.subs, s)
	e.addTopicLocked(s)
	return nil
}

// Unsubscribe removes the named subscription; deliveries already started go on. It reports
// whether the subscription existed.
func (e *Emulator) Unsubscribe(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, s := range e.subs {
		if s.Name == name {
			e.subs = slices.Delete(e.subs, i, i+1)
			return true
		}
	}
	return false
}

// Fault is the injected fate of one delivery.
type Fault int

// Faults.
const (
	// Deliver delivers normally (with retries).
	Deliver Fault = iota
	// Drop loses the delivery without any attempt, as EN may.
	Drop
	// Duplicate delivers the notification twice, independently.
	Duplicate
)

// DropNext makes the next n deliveries (one per notification and subscription) lost.
func (e *Emulator) DropNext(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dropNext += n
}

// DuplicateNext makes the next n deliveries happen twice.
func (e *Emulator) DuplicateNext(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dupNext += n
}

// SetFault replaces the Fault hook (nil removes it); see Options.Fault.
func (e *Emulator) SetFault(f func(Notification, Subscription) Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fault = f
}

// SetRates replaces the drop and duplicate probabilities.
func (e *Emulator) SetRates(drop, duplicate float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dropRate, e.dupRate = drop, duplicate
}

// Outcome is where a delivery stands.
type Outcome string

// Outcomes.
const (
	Pending   Outcome = "pending"
	Delivered Outcome = "delivered"
	Lost      Outcome = "lost"
)

// Delivery records one delivery of one notification to one subscription.
type Delivery struct {
	NotificationID string `json:"notification_id"`
	// ID and Type are the notification's.
	ID           string `json:"id"`
	Type         string `json:"type"`
	Subscription string `json:"subscription"`
	// Copy is 1, or 2 for the second delivery of a duplicated one.
	Copy     int     `json:"copy"`
	Attempts int     `json:"attempts"`
	Outcome  Outcome `json:"outcome"`
	// Dropped says the delivery was lost by injection, without an attempt.
	Dropped    bool      `json:"dropped,omitempty"`
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	Queued     time.Time `json:"queued"`
	Finished   time.Time `json:"finished,omitzero"`
}

// Deliveries returns a snapshot of every delivery, in the order they were queued.
func (e *Emulator) Deliveries() []Delivery {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Delivery, len(e.deliveries))
	for i, d := range e.deliveries {
		out[i] = *d
	}
	return out
}

// DeliveriesWith returns the deliveries with outcome o.
func (e *Emulator) DeliveriesWith(o Outcome) []Delivery {
	var out []Delivery
	for _, d := range e.Deliveries() {
		if d.Outcome == o {
			out = append(out, d)
		}
	}
	return out
}

// Lost returns the deliveries that were lost.
func (e *Emulator) Lost() []Delivery { return e.DeliveriesWith(Lost) }

// accept records n, assigns its notification id and queues its deliveries. Deliveries are
// counted in flight before accept returns, so WaitIdle after a send waits for them.
func (e *Emulator) accept(n Notification) (string, error) {
	n.NotificationID = newID()
	body, err := json.Marshal(n)
	if err != nil {
		return "", fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", ErrClosed
	}
	e.notifications = append(e.notifications, n)
	now := e.clock.Now()
	for _, s := range e.subs {
		if !s.matches(n) {
			continue
		}
		if s.URL == "" { // a person's destination: delivered without an HTTP attempt, no fault
			e.deliveries = append(e.deliveries, &Delivery{NotificationID: n.NotificationID, ID: n.ID, Type: n.Type, Subscription: s.Name,
				Copy: 1, Outcome: Delivered, Queued: now, Finished: now})
			continue
		}
		copies := 1
		switch e.decide(n, s) {
		case Drop:
			d := &Delivery{NotificationID: n.NotificationID, ID: n.ID, Type: n.Type, Subscription: s.Name,
				Copy: 1, Outcome: Lost, Dropped: true, LastError: "dropped by fault injection",
				Queued: now, Finished: now}
			e.deliveries = append(e.deliveries, d)
			e.log.Warn("delivery lost", "notification_id", n.NotificationID, "type", n.Type,
				"subscription", s.Name, "reason", "injected drop")
			continue
		case Duplicate:
			copies = 2
		}
		for c := 1; c <= copies; c++ {
			d := &Delivery{NotificationID: n.NotificationID, ID: n.ID, Type: n.Type, Subscription: s.Name,
				Copy: c, Outcome: Pending, Queued: now}
			e.deliveries = append(e.deliveries, d)
			if e.inflight == 0 {
				e.idle = make(chan struct{})
			}
			e.inflight++
			go e.deliver(d, s, body)
		}
	}
	return n.NotificationID, nil
}

// decide picks a delivery's fate; e.mu is held.
func (e *Emulator) decide(n Notification, s Subscription) Fault {
	switch {
	case e.dropNext > 0:
		e.dropNext--
		return Drop
	case e.dupNext > 0:
		e.dupNext--
		return Duplicate
	}
	if e.fault != nil {
		if f := e.fault(n, s); f != Deliver {
			return f
		}
	}
	if e.dropRate > 0 && e.rng.Float64() < e.dropRate {
		return Drop
	}
	if e.dupRate > 0 && e.rng.Float64() < e.dupRate {
		return Duplicate
	}
	return Deliver
}

// deliver runs the attempts of one delivery and records the outcome.
func (e *Emulator) deliver(d *Delivery, s Subscription, body []byte) {
	defer e.done()
	for attempt := 1; ; attempt++ {
		status, err := e.attempt(s, body)
		e.mu.Lock()
		d.Attempts = attempt
		d.LastStatus = status
		d.LastError = ""
		if err != nil {
			d.LastError = err.Error()
		}
		ok := err == nil && status >= 200 && status < 300
		final := ok || attempt > e.retries || e.ctx.Err() != nil
		if final {
			d.Outcome = Lost
			if ok {
				d.Outcome = Delivered
			}
			d.Finished = e.clock.Now()
		}
		rec := *d
		e.mu.Unlock()
		if final {
			level := slog.LevelDebug
			if rec.Outcome == Lost {
				level = slog.LevelWarn
			}
			e.log.Log(context.Background(), level, "delivery "+string(rec.Outcome), "notification_id", rec.NotificationID,
				"type", rec.Type, "subscription", rec.Subscription, "copy", rec.Copy, "attempts", rec.Attempts,
				"status", rec.LastStatus, "error", rec.LastError)
			return
		}
		if !e.wait() {
			e.mu.Lock()
			d.Outcome, d.LastError, d.Finished = Lost, "emulator closed", e.clock.Now()
			e.mu.Unlock()
			return
		}
	}
}

// attempt makes one HTTP POST; it returns the status, or an error for a transport failure.
func (e *Emulator) attempt(s Subscription, body []byte) (int, error) {
	select {
	case e.sem <- struct{}{}:
	case <-e.ctx.Done():
		return 0, ErrClosed
	}
	defer func() { <-e.sem }()
	ctx, cancel := context.WithTimeout(e.ctx, e.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	for k, v := range s.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keyguard-enemu")
	resp, err := e.client.Do(req)
	if err != nil {
		// The error names the URL and the cause, never a header.
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// wait sleeps RetryWait on the emulator's clock; false when the emulator closed meanwhile.
func (e *Emulator) wait() bool {
	ch := make(chan struct{})
	t := e.clock.AfterFunc(e.retryWait, func() { close(ch) })
	select {
	case <-ch:
		return true
	case <-e.ctx.Done():
		t.Stop()
		return false
	}
}

func (e *Emulator) done() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inflight--
	if e.inflight == 0 {
		close(e.idle)
	}
}
