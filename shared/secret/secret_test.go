package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := New("hunter2-value")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "token", s, "struct", struct{ T Secret }{s})
	j, _ := json.Marshal(struct{ T Secret }{s})
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), buf.String(), string(j)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %s", out)
		}
	}
	if s.Reveal() != "hunter2-value" {
		t.Fatal("Reveal lost the value")
	}
}

func TestEqual(t *testing.T) {
	s := New("abc")
	for _, tc := range []struct {
		in   string
		want bool
	}{{"abc", true}, {"abd", false}, {"", false}, {"abcd", false}} {
		if got := s.Equal(tc.in); got != tc.want {
			t.Errorf("Equal(%q) = %v", tc.in, got)
		}
	}
	if (Secret{}).Equal("") {
		t.Error("unset secret equals empty input")
	}
}
