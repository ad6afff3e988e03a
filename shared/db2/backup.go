package db2

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TimestampLayout is the layout of a Db2 backup timestamp (yyyymmddhhmmss, server local time).
const TimestampLayout = "20060102150405"

var backupOK = regexp.MustCompile(`Backup successful\.\s+The timestamp for this backup image is\s*:\s*(\d+)`)

// ParseBackupResult returns the image timestamp from `db2 backup database ...` output:
//
//	Backup successful. The timestamp for this backup image is : 20261124013000
//
// Output with a Db2 error message instead returns its classified *Error.
func ParseBackupResult(out string) (timestamp string, err error) {
	if len(out) > maxOutput {
		return "", unrecognised("backup", "output larger than %d bytes", maxOutput)
	}
	if m := backupOK.FindStringSubmatch(out); m != nil {
		if !ValidTimestamp(m[1]) {
			return "", unrecognised("backup", "timestamp %q is not yyyymmddhhmmss", m[1])
		}
		return m[1], nil
	}
	if e := outputError(out); e != nil {
		return "", e
	}
	return "", unrecognised("backup", "no %q line and no Db2 message", "Backup successful.")
}

var partResult = regexp.MustCompile(`(?m)^\s*(\d{4})\s+((?:DB|SQL)\d{4,5}[NIWC])\b(.*)$`)

// ParseBackupPartitions reads the per-partition table a single-system-view backup (BACKUP
// DATABASE ... ON ALL DBPARTITIONNUMS) prints before its "Backup successful" line:
//
//	Part  Result
//	----  ------------------------------------------------------------------------
//	0000  DB20000I  The BACKUP DATABASE command completed successfully.
//	0001  DB20000I  The BACKUP DATABASE command completed successfully.
//
// and returns the partition numbers, ascending. A partition whose result is an SQL error
// message fails the whole backup with that message's *Error; output without the table is
// unrecognised.
func ParseBackupPartitions(out string) ([]int, error) {
	if len(out) > maxOutput {
		return nil, unrecognised("backup", "output larger than %d bytes", maxOutput)
	}
	var parts []int
	for _, m := range partResult.FindAllStringSubmatch(out, MaxPartitions+1) {
		n := atoi(m[1])
		if n > 999 {
			return nil, unrecognised("backup", "partition %s is not 0-999", m[1])
		}
		if strings.HasPrefix(m[2], "SQL") && strings.HasSuffix(m[2], "N") {
			if e := outputError(m[2] + m[3]); e != nil {
				return nil, fmt.Errorf("partition %d: %w", n, e)
			}
			return nil, unrecognised("backup", "partition %d: %s", n, truncate(m[2]+m[3]))
		}
		parts = append(parts, n)
	}
	if len(parts) == 0 {
		return nil, unrecognised("backup", "no per-partition result (Part Result table)")
	}
	if len(parts) > MaxPartitions {
		return nil, unrecognised("backup", "more than %d partitions", MaxPartitions)
	}
	slices.Sort(parts)
	for i := 1; i < len(parts); i++ {
		if parts[i] == parts[i-1] {
			return nil, unrecognised("backup", "partition %d listed twice", parts[i])
		}
	}
	return parts, nil
}

// MaxPartitions bounds the database partitions a parser accepts (Db2 numbers them 0-999).
const MaxPartitions = 1000

var (
	dirAlias   = regexp.MustCompile(`(?m)^\s*Database alias\s*=\s*(\S+)\s*$`)
	dirCatalog = regexp.MustCompile(`(?m)^\s*Catalog database partition number\s*=\s*(\d{1,3})\s*$`)
)

// ParseCatalogPartition reads `db2 list database directory` output and returns the catalog
// database partition number of the entry whose alias is alias (case-insensitive): each entry
// has a "Database alias = X" line and, in a partitioned instance, a "Catalog database partition
// number = N" line after it.
func ParseCatalogPartition(out, alias string) (int, error) {
	if len(out) > maxOutput {
		return 0, unrecognised("database directory", "output larger than %d bytes", maxOutput)
	}
	if e := outputError(out); e != nil {
		return 0, e
	}
	aliases := dirAlias.FindAllStringSubmatchIndex(out, -1)
	for i, m := range aliases {
		if !strings.EqualFold(out[m[2]:m[3]], alias) {
			continue
		}
		end := len(out)
		if i+1 < len(aliases) {
			end = aliases[i+1][0]
		}
		c := dirCatalog.FindStringSubmatch(out[m[1]:end])
		if c == nil {
			return 0, unrecognised("database directory", "entry %s has no catalog database partition number", truncate(alias))
		}
		return atoi(c[1]), nil
	}
	return 0, unrecognised("database directory", "no entry for alias %s", truncate(alias))
}

// ValidTimestamp reports whether s is a 14-digit Db2 backup timestamp naming a real time.
func ValidTimestamp(s string) bool {
	if len(s) != 14 {
		return false
	}
	_, err := time.Parse(TimestampLayout, s)
	return err == nil
}

// Image types in an image name: the object backed up, not full / incremental (an incremental
// image of a whole database is type 0 too).
const (
	ImageDatabase   = 0
	ImageTablespace = 3
	ImageLoadCopy   = 4
)

// Image is a parsed backup image file name.
type Image struct {
	Alias     string `json:"alias"`
	Type      int    `json:"type"`
	Instance  string `json:"instance"`
	Partition int    `json:"partition"`
	// Catalog is the catalog partition of the old NODEnnnn.CATNnnnn form, -1 in the DBPART form.
	Catalog   int    `json:"catalog"`
	Timestamp string `json:"timestamp"`
	Sequence  int    `json:"sequence"`
}

// ImageName returns the file name Db2 on Linux and UNIX gives a backup image written to a
// directory, in the form used since Db2 9.5:
//
//	<ALIAS>.<type>.<instance>.DBPART<nnn>.<timestamp>.<seq>
//
// for example SAMPLE.0.db2inst1.DBPART000.20261124013000.001: alias in upper case, type 0 for a
// database and 3 for a table space backup, database partition 000 (single partition) and
// sequence 001 (one target directory, so one file per image). Older releases wrote
// NODEnnnn.CATNnnnn in place of DBPARTnnn; ParseImageName reads both.
func ImageName(alias, instance string, tablespace bool, timestamp string) string {
	typ := ImageDatabase
	if tablespace {
		typ = ImageTablespace
	}
	return Image{Alias: strings.ToUpper(alias), Type: typ, Instance: instance, Catalog: -1,
		Timestamp: timestamp, Sequence: 1}.String()
}

// String renders the image name (DBPART form unless Catalog >= 0).
func (i Image) String() string {
	part := fmt.Sprintf("DBPART%03d", i.Partition)
	if i.Catalog >= 0 {
		part = fmt.Sprintf("NODE%04d.CATN%04d", i.Partition, i.Catalog)
	}
	return fmt.Sprintf("%s.%d.%s.%s.%s.%03d", i.Alias, i.Type, i.Instance, part, i.Timestamp, i.Sequence)
}

var (
	imageNew = regexp.MustCompile(`^([A-Z0-9@#$_]{1,8})\.(\d)\.([A-Za-z0-9_]{1,8})\.DBPART(\d{3})\.(\d{14})\.(\d{3})$`)
	imageOld = regexp.MustCompile(`^([A-Z0-9@#$_]{1,8})\.(\d)\.([A-Za-z0-9_]{1,8})\.NODE(\d{4})\.CATN(\d{4})\.(\d{14})\.(\d{3})$`)
)

// ParseImageName parses a backup image file name (a path is reduced to its last element).
func ParseImageName(name string) (Image, error) {
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	var img Image
	var ts, seq string
	if m := imageNew.FindStringSubmatch(base); m != nil {
		img = Image{Alias: m[1], Type: atoi(m[2]), Instance: m[3], Partition: atoi(m[4]), Catalog: -1}
		ts, seq = m[5], m[6]
	} else if m := imageOld.FindStringSubmatch(base); m != nil {
		img = Image{Alias: m[1], Type: atoi(m[2]), Instance: m[3], Partition: atoi(m[4]), Catalog: atoi(m[5])}
		ts, seq = m[6], m[7]
	} else {
		return Image{}, unrecognised("image name", "%q is not <ALIAS>.<type>.<instance>.DBPARTnnn.<timestamp>.<seq>", truncate(base))
	}
	if !ValidTimestamp(ts) {
		return Image{}, unrecognised("image name", "%q: timestamp %s is not a time", truncate(base), ts)
	}
	if img.Alias[0] >= '0' && img.Alias[0] <= '9' {
		return Image{}, unrecognised("image name", "%q: alias starts with a digit", truncate(base))
	}
	img.Timestamp, img.Sequence = ts, atoi(seq)
	if img.Sequence == 0 {
		return Image{}, unrecognised("image name", "%q: sequence 000", truncate(base))
	}
	return img, nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
