package errkind

import (
	"errors"
	"fmt"
	"testing"
)

func TestOfWalksTheChain(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		err             error
		kind            Kind
		trans, permanen bool
	}{
		{nil, "", false, false},
		{base, "", false, false},
		{With(Transient, base), Transient, true, false},
		{fmt.Errorf("start run: %w", With(Configuration, base)), Configuration, false, true},
		{With(Invalid, fmt.Errorf("x: %w", With(Transient, base))), Invalid, false, true},
	}
	for _, tc := range tests {
		if Of(tc.err) != tc.kind || IsTransient(tc.err) != tc.trans || IsPermanent(tc.err) != tc.permanen {
			t.Errorf("%v: kind %q transient %v permanent %v", tc.err, Of(tc.err), IsTransient(tc.err), IsPermanent(tc.err))
		}
	}
	if With(Permanent, nil) != nil {
		t.Error("With(k, nil) is not nil")
	}
	if err := With(Permanent, base); !errors.Is(err, base) || err.Error() != "boom" {
		t.Errorf("With hides the error: %v", err)
	}
}
