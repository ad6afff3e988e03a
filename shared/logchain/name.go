package logchain

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// File is one archived log file.
type File struct {
	// Number is the log file number (S0000123.LOG is 123).
	Number int `json:"number"`
	// Chain is the log chain (C0000000 is 0): Db2 starts a new chain after a restore that is
	// not rolled forward to the end of the logs. 0 when the path names none.
	Chain int `json:"chain"`
	// Partition is the database partition (NODE0000 is 0); 0 when the path names none.
	Partition int `json:"partition"`
	// Key is where the file is (a path or object key).
	Key  string `json:"key"`
	Size int64  `json:"size"`
	// Modified is when the file was written to the archive (zero when unknown).
	Modified time.Time `json:"modified,omitzero"`
}

// MaxLogNumber is the highest log file number Db2 uses (S9999999.LOG).
const MaxLogNumber = 9_999_999

// Name is the file name of log number n: S0000123.LOG.
func Name(n int) string { return fmt.Sprintf("S%07d.LOG", n) }

// ParseName reads a log file name: "S", seven digits, ".LOG" (Db2 writes the extension in
// upper case; the S is upper case too). A path is reduced to its last element.
func ParseName(name string) (int, error) {
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	if len(base) != 12 || base[0] != 'S' || base[8:] != ".LOG" {
		return 0, fmt.Errorf("%q is not a Db2 log file name (S0000123.LOG)", clip(base))
	}
	n, ok := digits(base[1:8])
	if !ok {
		return 0, fmt.Errorf("%q is not a Db2 log file name (S0000123.LOG)", clip(base))
	}
	return n, nil
}

// ParsePath reads the location of an archived log file: its name, and the directories Db2
// archives it under, of which it reads those it recognises (NODEnnnn the partition,
// LOGSTREAMnnnn, Cnnnnnnn the log chain):
//
//	<archive>/<instance>/<DATABASE>/NODE0000/LOGSTREAM0000/C0000000/S0000123.LOG
//
// Other directories (the archive's own path, instance and database) are ignored.
func ParsePath(p string) (File, error) {
	p = strings.ReplaceAll(p, "\\", "/")
	n, err := ParseName(p)
	if err != nil {
		return File{}, err
	}
	f := File{Number: n, Key: p}
	dirs := strings.Split(path.Dir(p), "/")
	seenChain := false
	for i := len(dirs) - 1; i >= 0 && i >= len(dirs)-3; i-- {
		d := dirs[i]
		switch {
		case !seenChain && len(d) == 8 && d[0] == 'C':
			c, ok := digits(d[1:])
			if !ok {
				return File{}, fmt.Errorf("log %s: %q is not a log chain directory (C0000000)", clip(p), clip(d))
			}
			f.Chain, seenChain = c, true
		case len(d) == 8 && strings.HasPrefix(d, "NODE"):
			part, ok := digits(d[4:])
			if !ok || part > 999 {
				return File{}, fmt.Errorf("log %s: %q is not a partition directory (NODE0000)", clip(p), clip(d))
			}
			f.Partition = part
		}
	}
	return f, nil
}

func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
