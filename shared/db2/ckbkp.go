package db2

import (
	"regexp"
	"strconv"
	"strings"
)

// CheckDetails is what db2ckbkp reported besides its verdict.
type CheckDetails struct {
	// Images counts the "[n] Buffers processed:" lines (one per image checked).
	Images int `json:"images"`
	// Buffers counts the '#' marks on those lines (one per buffer read).
	Buffers int `json:"buffers"`
	// ErrorsDetected is the number in "Image Verification Complete - ERRORS DETECTED: n".
	ErrorsDetected int `json:"errors_detected"`
	// Errors are the lines that begin with ERROR (at most 10).
	Errors []string `json:"errors,omitempty"`
	// Header holds the media header fields ("<name> -- <value>") printed by db2ckbkp -h.
	Header map[string]string `json:"header,omitempty"`
	// ProperName is the line after "The proper image file name would be:" (db2ckbkp -h).
	ProperName string `json:"proper_name,omitempty"`
}

const (
	ckbkpSuccess = "Image Verification Complete - successful."
	maxCkErrors  = 10
)

var (
	ckbkpFailed  = regexp.MustCompile(`Image Verification Complete - ERRORS DETECTED:\s*(\d+)`)
	ckbkpBuffers = regexp.MustCompile(`^\[(\d+)\]\s+Buffers processed:\s*(#*)`)
	ckbkpHeader  = regexp.MustCompile(`^\s*([A-Za-z][A-Za-z0-9 .'()/#-]*?)\s+--\s?(.*)$`)
)

// ParseCheckBackup reads `db2ckbkp [-h] <image>` output. ok is true only when the output says
//
//	Image Verification Complete - successful.
//
// and reports no error line. A recognised failure (ERRORS DETECTED, ERROR lines) gives ok false
// with a nil error; err is non-nil only for output that is neither a success nor a failure.
func ParseCheckBackup(out string) (ok bool, details CheckDetails, err error) {
	if len(out) > maxOutput {
		return false, CheckDetails{}, unrecognised("db2ckbkp", "output larger than %d bytes", maxOutput)
	}
	lines := strings.Split(out, "\n")
	inHeader := strings.Contains(out, "MEDIA HEADER REACHED")
	for i, raw := range lines {
		line := strings.TrimRight(raw, "\r \t")
		trimmed := strings.TrimSpace(line)
		switch {
		case ckbkpBuffers.MatchString(trimmed):
			m := ckbkpBuffers.FindStringSubmatch(trimmed)
			details.Images++
			details.Buffers += len(m[2])
		case strings.HasPrefix(trimmed, "ERROR"):
			if len(details.Errors) < maxCkErrors {
				details.Errors = append(details.Errors, messageText(trimmed))
			}
		case strings.HasPrefix(trimmed, "The proper image file name would be:"):
			if i+1 < len(lines) {
				details.ProperName = strings.TrimSpace(lines[i+1])
			}
		case inHeader && ckbkpHeader.MatchString(line):
			m := ckbkpHeader.FindStringSubmatch(line)
			if details.Header == nil {
				details.Header = map[string]string{}
			}
			if _, dup := details.Header[m[1]]; !dup && len(details.Header) < 200 {
				details.Header[m[1]] = strings.TrimSpace(m[2])
			}
		}
	}
	failed := false
	if m := ckbkpFailed.FindStringSubmatch(out); m != nil {
		failed = true
		n, convErr := strconv.Atoi(m[1])
		if convErr != nil || n > 1<<30 {
			n = 1 << 30
		}
		details.ErrorsDetected = n
	}
	switch {
	case strings.Contains(out, ckbkpSuccess) && !failed && len(details.Errors) == 0:
		return true, details, nil
	case failed || len(details.Errors) > 0:
		return false, details, nil
	}
	if e := outputError(out); e != nil {
		return false, details, e
	}
	return false, details, unrecognised("db2ckbkp", "no verification verdict in the output")
}
