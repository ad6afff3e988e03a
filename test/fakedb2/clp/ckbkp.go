package clp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Ckbkp runs one `db2ckbkp [-h] <image>...` command line (args are os.Args[1:]), writes what the
// real tool prints and returns its exit status (0 when every image verified, 1 otherwise).
func Ckbkp(args []string, stdout io.Writer) int {
	header := false
	var images []string
	for _, a := range args {
		switch {
		case a == "-h" || a == "-H":
			header = true
		case strings.HasPrefix(a, "-"):
			// Other options (-a, -c, -d, -l, -n, -o, -p, -s, -t, -cl, -co) only add listings.
		default:
			images = append(images, a)
		}
	}
	if len(images) == 0 {
		fmt.Fprint(stdout, "usage: db2ckbkp [-a] [-c] [-d] [-e] [-h] [-l] [-n] [-o] [-p] [-s] [-t] [-cl decompressionLib] [-co decompressionOpts] [-H] [-T] filename [filename ...]\n")
		return 1
	}
	errs := 0
	for n, path := range images {
		v, err := VerifyImage(path)
		switch {
		case err == nil || errors.Is(err, ErrCorrupt):
			if header && err == nil {
				printHeader(stdout, v)
			}
			marks := strings.Repeat("#", min(v.Buffers, 1000))
			if err != nil {
				marks = marks[:max(1, len(marks)/2)]
			}
			fmt.Fprintf(stdout, "\n[%d] Buffers processed:  %s\n", n+1, marks)
			if err != nil {
				errs++
				fmt.Fprintf(stdout, "ERROR!  %s.\n", capital(err.Error()))
			}
		case errors.Is(err, ErrNotImage):
			errs++
			fmt.Fprintf(stdout, "\nERROR!  %s.\n", capital(err.Error()))
		case errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrPermission):
			errs++
			fmt.Fprintf(stdout, "ERROR! Unable to open image file %s.\n", path)
		default:
			errs++
			fmt.Fprintf(stdout, "ERROR! Unable to read image file %s: %v.\n", path, err)
		}
	}
	if errs > 0 {
		fmt.Fprintf(stdout, "\nImage Verification Complete - ERRORS DETECTED:    %d\n\n", errs)
		return 1
	}
	fmt.Fprint(stdout, "\nImage Verification Complete - successful.\n\n")
	return 0
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func printHeader(w io.Writer, v Verified) {
	m := v.Meta
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	objType := 0
	if len(m.Tablespaces) > 0 {
		objType = 3
	}
	encrypt := "0x0"
	if m.Encrypted {
		encrypt = "0x1"
	}
	fmt.Fprint(w, "\n=====================\nMEDIA HEADER REACHED:\n=====================\n")
	for _, f := range [][2]string{
		{"Server Database Name", m.Database},
		{"Server Database Alias", m.Database},
		{"Client Database Alias", m.Database},
		{"Timestamp", m.Timestamp},
		{"Database Partition Number", "0"},
		{"Instance", m.Instance},
		{"Sequence Number", "1"},
		{"Release ID", "0x1500 (DB2 v11.5.9.0)"},
		{"Backup Mode", fmt.Sprint(b2i(m.Mode == "online"))},
		{"Includes Logs", fmt.Sprint(b2i(m.IncludeLogs))},
		{"Compression", fmt.Sprint(b2i(m.Compress))},
		{"Backup Type", fmt.Sprint(objType)},
		{"Backup Buffer Size", fmt.Sprint(BufferBytes)},
		{"Number of Sessions", "1"},
		{"Platform", "0x1E (Linux-x86-64)"},
		{"Encrypt Info Flags", encrypt},
	} {
		fmt.Fprintf(w, "        %-30s -- %s\n", f[0], f[1])
	}
	fmt.Fprintf(w, "\n The proper image file name would be:\n%s.%d.%s.DBPART000.%s.001\n\n", m.Database, objType, m.Instance, m.Timestamp)
}
