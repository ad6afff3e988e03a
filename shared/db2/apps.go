package db2

import (
	"regexp"
	"strconv"
	"strings"
)

// Application is one row of `db2 list applications for db <db>`.
type Application struct {
	AuthID string `json:"auth_id"`
	Name   string `json:"name"`
	Handle int64  `json:"handle"`
	ID     string `json:"id"`
	DBName string `json:"db_name"`
	Agents int    `json:"agents"`
}

// noMonitorData is SQL1611W, which `list applications` prints when nothing is connected.
const noMonitorData = "SQL1611W"

var dashColumns = regexp.MustCompile(`-+`)

// ParseApplications reads `db2 list applications [for db <db>]` output: a table whose columns
// are Auth Id, Application Name, Appl. Handle, Application Id, DB Name and # of Agents, under a
// rule of dashes that gives the column widths. "SQL1611W No data was returned by Database System
// Monitor." means no application is connected and returns an empty list. Any other Db2 error
// message returns its *Error.
func ParseApplications(out string) ([]Application, error) {
	if len(out) > maxOutput {
		return nil, unrecognised("list applications", "output larger than %d bytes", maxOutput)
	}
	code, msg, ok := ParseSQLCode(out)
	if ok && code == noMonitorData {
		return []Application{}, nil
	}
	if ok && severity(code) != 'W' {
		return nil, &Error{Class: classifyMessage(code, msg), Code: code, Msg: msg}
	}
	lines := strings.Split(strings.ReplaceAll(out, "\r", ""), "\n")
	rule := -1
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "--------") && strings.Trim(t, "- ") == "" {
			rule = i
			break
		}
	}
	if rule < 0 {
		return nil, unrecognised("list applications", "no table and no SQL1611W")
	}
	cols := dashColumns.FindAllStringIndex(lines[rule], -1)
	if len(cols) != 6 {
		return nil, unrecognised("list applications", "%d columns, want 6", len(cols))
	}
	apps := []Application{}
	for _, l := range lines[rule+1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		f := make([]string, len(cols))
		for c, span := range cols {
			start, end := span[0], span[1]
			if c == len(cols)-1 {
				end = len(l)
			}
			if start < len(l) {
				f[c] = strings.TrimSpace(l[start:min(end, len(l))])
			}
		}
		handle, err1 := strconv.ParseInt(f[2], 10, 64)
		agents, err2 := strconv.Atoi(f[5])
		if f[0] == "" || f[3] == "" || err1 != nil || err2 != nil || handle < 0 || agents < 0 {
			return nil, unrecognised("list applications", "row %q", truncate(strings.TrimSpace(l)))
		}
		apps = append(apps, Application{AuthID: f[0], Name: f[1], Handle: handle, ID: f[3], DBName: f[4], Agents: agents})
	}
	return apps, nil
}
