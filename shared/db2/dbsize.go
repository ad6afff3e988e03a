package db2

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DBSize is the result of CALL GET_DBSIZE_INFO(?, ?, ?, -1). Sizes are in bytes; -1 means
// unknown (Db2 returns -1 for a capacity it cannot compute).
type DBSize struct {
	Snapshot time.Time `json:"snapshot"`
	Size     int64     `json:"size"`
	Capacity int64     `json:"capacity"`
}

// SizeUnknown is the DBSize of a database whose size could not be asked (e.g. backup pending).
var SizeUnknown = DBSize{Size: -1, Capacity: -1}

var (
	paramPair   = regexp.MustCompile(`(?m)^\s*Parameter Name\s*:\s*(\S+)\s*\n\s*Parameter Value\s*:\s*(.*?)\s*$`)
	returnState = regexp.MustCompile(`Return Status\s*=\s*(-?\d+)`)
)

// snapshotLayout is how the CLP prints a TIMESTAMP: 2026-11-24-01.29.58.451817.
const snapshotLayout = "2006-01-02-15.04.05.999999"

// ParseDBSize reads the CLP output of CALL GET_DBSIZE_INFO(?, ?, ?, -1):
//
//	Parameter Name  : DATABASESIZE
//	Parameter Value : 1207959552
//
// for SNAPSHOTTIMESTAMP, DATABASESIZE and DATABASECAPACITY, then "Return Status = 0".
// DATABASESIZE is required; a missing capacity is -1.
func ParseDBSize(out string) (DBSize, error) {
	if len(out) > maxOutput {
		return DBSize{}, unrecognised("dbsize", "output larger than %d bytes", maxOutput)
	}
	if e := outputError(out); e != nil {
		return DBSize{}, e
	}
	vals := map[string]string{}
	for _, m := range paramPair.FindAllStringSubmatch(out, -1) {
		vals[strings.ToUpper(m[1])] = m[2]
	}
	if m := returnState.FindStringSubmatch(out); m != nil && m[1] != "0" {
		return DBSize{}, unrecognised("dbsize", "return status %s", m[1])
	}
	sz := DBSize{Size: -1, Capacity: -1}
	v, ok := vals["DATABASESIZE"]
	if !ok {
		return DBSize{}, unrecognised("dbsize", "no DATABASESIZE parameter")
	}
	var err error
	if sz.Size, err = sizeValue("DATABASESIZE", v); err != nil {
		return DBSize{}, err
	}
	if v, ok := vals["DATABASECAPACITY"]; ok {
		if sz.Capacity, err = sizeValue("DATABASECAPACITY", v); err != nil {
			return DBSize{}, err
		}
	}
	if v, ok := vals["SNAPSHOTTIMESTAMP"]; ok && v != "-" {
		t, err := time.Parse(snapshotLayout, v)
		if err != nil {
			return DBSize{}, unrecognised("dbsize", "SNAPSHOTTIMESTAMP %q", truncate(v))
		}
		sz.Snapshot = t
	}
	return sz, nil
}

func sizeValue(name, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < -1 {
		return 0, unrecognised("dbsize", "%s = %q is not a size", name, truncate(v))
	}
	return n, nil
}
