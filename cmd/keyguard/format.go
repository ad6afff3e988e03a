package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/upload"
)

// Formatting shared by the commands.

func (o *ops) table() *tabwriter.Writer { return tabwriter.NewWriter(o.out, 0, 0, 2, ' ', 0) }

func (o *ops) json(v any) error {
	enc := json.NewEncoder(o.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func find(list []catalog.Entry, ts string) (catalog.Entry, bool) {
	for _, e := range list {
		if e.ImageTimestamp == ts {
			return e, true
		}
	}
	return catalog.Entry{}, false
}

// utc formats t in UTC to the second.
func utc(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// minute formats t in UTC to the minute, for tables.
func minute(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// ago says how long before now t was, in the largest fitting unit ("3h ago", "2d ago").
func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + span(-d)
	case d < time.Minute:
		return "just now"
	}
	return span(d) + " ago"
}

// until says how long after now t is ("in 3h").
func until(t, now time.Time) string {
	if d := t.Sub(now); d > 0 {
		return "in " + span(d)
	}
	return "now"
}

func span(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return fmt.Sprintf("%ds", int(d/time.Second))
}

// keyID is the last segment of a key CRN (the key's id).
func keyID(crn string) string {
	if crn == "" {
		return "unknown key"
	}
	return crn[strings.LastIndex(crn, ":")+1:]
}

// size formats n bytes in binary units.
func size(n int64) string { return upload.Size(n) }

func object(o catalog.Object) string {
	s := fmt.Sprintf("%s (%s)", o.Key, size(o.Size))
	if o.SHA256 != "" {
		s += " sha256 " + o.SHA256
	}
	return s
}

// stored lists the files keyguard stored for e (the ones Catalog.Delete removes), and how many
// external locations e names.
func stored(e catalog.Entry) (files []catalog.Object, external int) {
	all := e.Images
	if e.Keystore != nil {
		all = append(slices.Clone(all), *e.Keystore)
	}
	for _, o := range all {
		if o.External() {
			external++
		} else {
			files = append(files, o)
		}
	}
	return files, external
}

// files says how many files keyguard stored for e.
func files(e catalog.Entry) string {
	fs, ext := stored(e)
	s := fmt.Sprintf("%d stored file%s", len(fs), plural(len(fs)))
	if ext > 0 {
		s += fmt.Sprintf(" (%d external location%s left alone)", ext, plural(ext))
	}
	return s
}

// imageKeys names e's image files: all of them, or the first and how many more.
func imageKeys(e catalog.Entry) string {
	if len(e.Images) <= 2 {
		keys := make([]string, len(e.Images))
		for i, o := range e.Images {
			keys[i] = o.Key
		}
		return strings.Join(keys, ", ")
	}
	return fmt.Sprintf("%s and %d more", e.Images[0].Key, len(e.Images)-1)
}

// location is where e's images are, in one cell: the first file and how many more.
func location(e catalog.Entry) string {
	switch len(e.Images) {
	case 0:
		return "-"
	case 1:
		return e.Images[0].Key
	}
	return fmt.Sprintf("%s +%d", e.Images[0].Key, len(e.Images)-1)
}

// cut shortens s to n runes with an ellipsis.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func verbS(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// short abbreviates a Key Protect version id.
func short(v string) string {
	if len(v) > 8 {
		return v[:8]
	}
	return orDash(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
