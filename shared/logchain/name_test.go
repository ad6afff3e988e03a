package logchain_test

import (
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/logchain"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		in             string
		num, chain, pt int
		bad            bool
	}{
		{in: "S0000123.LOG", num: 123},
		{in: "/db2/archive/db2inst1/SALES/NODE0000/LOGSTREAM0000/C0000000/S0000000.LOG", num: 0},
		{in: "db2inst1/SALES/NODE0002/LOGSTREAM0002/C0000003/S9999999.LOG", num: 9999999, chain: 3, pt: 2},
		{in: `C:\arch\NODE0001\C0000001\S0000042.LOG`, num: 42, chain: 1, pt: 1},
		{in: "C0000000/S0000123.log", bad: true},
		{in: "S000123.LOG", bad: true},
		{in: "S00001234.LOG", bad: true},
		{in: "X0000123.LOG", bad: true},
		{in: "S00001x3.LOG", bad: true},
		{in: "Cxyzabcd/S0000001.LOG", bad: true},
		{in: "NODEx000/C0000000/S0000001.LOG", bad: true},
		{in: "", bad: true},
	}
	for _, c := range cases {
		f, err := logchain.ParsePath(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v", c.in, f)
			}
			continue
		}
		if err != nil || f.Number != c.num || f.Chain != c.chain || f.Partition != c.pt {
			t.Errorf("%q = %+v, %v; want number %d chain %d partition %d", c.in, f, err, c.num, c.chain, c.pt)
		}
	}
	if logchain.Name(123) != "S0000123.LOG" {
		t.Errorf("Name(123) = %s", logchain.Name(123))
	}
}

// FuzzParsePath: names come from a directory or bucket anyone with access can write to. Never
// panic; what is accepted names a log number in range whose name parses back to it.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"S0000123.LOG", "db2inst1/SALES/NODE0000/LOGSTREAM0000/C0000000/S0000001.LOG", "C9999999/S9999999.LOG", "NODE1000/S0000001.LOG", `a\b\S0000001.LOG`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := logchain.ParsePath(s)
		if err != nil {
			return
		}
		if p.Number < 0 || p.Number > logchain.MaxLogNumber || p.Chain < 0 || p.Partition < 0 || p.Partition > 999 {
			t.Fatalf("%q: out of range %+v", s, p)
		}
		if n, err := logchain.ParseName(logchain.Name(p.Number)); err != nil || n != p.Number {
			t.Fatalf("%q: name round trip %d %v", s, n, err)
		}
		if !strings.HasSuffix(s, ".LOG") {
			t.Fatalf("%q accepted without .LOG", s)
		}
	})
}
