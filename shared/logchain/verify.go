package logchain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kinds of gap.
const (
	// Missing: the file is below Db2's first active log, so it should have been archived, and
	// it is not in the archive: a roll-forward through it halts (SQL4970N).
	Missing = "missing"
	// NotArchivedYet: the file is at or above Db2's first active log: it is still in the active
	// log path, and Db2 archives it when it is full (or at ARCHIVE LOG).
	NotArchivedYet = "not archived yet"
)

// MaxGaps bounds the gaps a Report lists (Report.GapsOmitted counts the others).
const MaxGaps = 32

// Need is what the check needs besides the archive's files.
type Need struct {
	// From is the first log file the oldest kept restorable point needs (the LogRange.First of
	// the oldest image retention keeps with a complete chain); -1 when unknown: the oldest
	// archived file is taken instead.
	From int
	// FirstActive is Db2's first active log file (GET DB CFG "First active log file"); files
	// from it on are not archived yet. -1 when unknown: the newest archived file is taken as the
	// end, and nothing is "not archived yet".
	FirstActive int
	// Chain is the log chain checked; -1 for the newest chain in the archive.
	Chain int
	// Partition is the database partition checked (0 for a single-partition database).
	Partition int
}

// Gap is a run of consecutive log files absent from the archive.
type Gap struct {
	First int    `json:"first"`
	Last  int    `json:"last"`
	Kind  string `json:"kind"`
}

// String names the gap's files: "S0000005.LOG" or "S0000005.LOG to S0000007.LOG (3 files)".
func (g Gap) String() string {
	if g.First == g.Last {
		return Name(g.First) + " " + g.Kind
	}
	return fmt.Sprintf("%s to %s (%d files) %s", Name(g.First), Name(g.Last), g.Last-g.First+1, g.Kind)
}

// Verify checks the archived files of need's chain and partition: every number from need.From
// up to the end (need.FirstActive - 1, or the newest archived file) must be there. It returns
// the report (its Database, CheckedAt, Archive and AutoDelete are the caller's to set). files
// may be in any order and hold other chains and partitions; it is not modified. Pure; linear
// in len(files) after a sort.
func Verify(files []File, need Need) Report {
	r := Report{Chain: need.Chain, Partition: need.Partition, From: -1, FirstActive: need.FirstActive, Oldest: -1, Newest: -1}
	if r.Chain < 0 {
		for _, f := range files {
			if f.Partition == need.Partition && f.Chain > r.Chain {
				r.Chain = f.Chain
			}
		}
		r.Chain = max(r.Chain, 0)
	}
	nums := make([]int, 0, len(files))
	for _, f := range files {
		switch {
		case f.Partition != need.Partition:
		case f.Chain < r.Chain:
			r.OlderChainFiles++
		case f.Chain == r.Chain:
			nums = append(nums, f.Number)
			if r.NewestAt.IsZero() || f.Modified.After(r.NewestAt) {
				r.NewestAt = f.Modified
			}
		}
	}
	slices.Sort(nums)
	nums = slices.Compact(nums)
	r.Files = len(nums)
	if len(nums) > 0 {
		r.Oldest, r.Newest = nums[0], nums[len(nums)-1]
	}
	from := need.From
	if from < 0 {
		from = r.Oldest
	}
	r.From = from
	end := r.Newest // last number that must be archived
	if need.FirstActive >= 0 {
		end = need.FirstActive - 1
	}
	if from < 0 || end < from && need.FirstActive < 0 {
		return r
	}
	add := func(first, last int, kind string) {
		if first > last {
			return
		}
		if kind == Missing {
			r.Missing += last - first + 1
			if first <= end && last >= from {
				r.Broken = true
			}
		}
		if len(r.Gaps) < MaxGaps {
			r.Gaps = append(r.Gaps, Gap{First: first, Last: last, Kind: kind})
		} else {
			r.GapsOmitted++
		}
	}
	next := from // the next number expected
	i, _ := slices.BinarySearch(nums, from)
	for ; i < len(nums) && nums[i] <= end; i++ {
		add(next, nums[i]-1, Missing)
		next = nums[i] + 1
	}
	add(next, end, Missing)
	// Files below the first active one that are not archived are missing (Db2 no longer needs
	// them for crash recovery, so it has archived them or failed to); files at or above it are
	// still in the active log path.
	if need.FirstActive >= 0 {
		r.NotArchived = fmt.Sprintf("%s on (the active log path)", Name(need.FirstActive))
	}
	return r
}

// Report is the result of a log chain check, stored at logchain/<database>.json.
type Report struct {
	Database  string    `json:"database"`
	CheckedAt time.Time `json:"checked_at"`
	// Archive says where the files were listed (LOGARCHMETH1's target), Method the archive
	// method as Db2 reports it.
	Archive string `json:"archive"`
	Method  string `json:"method,omitempty"`
	// Chain and Partition are the log chain and database partition checked.
	Chain     int `json:"chain"`
	Partition int `json:"partition"`
	// From is the first log file needed (-1 when nothing is), FirstActive Db2's first active
	// log file (-1 when unknown).
	From        int `json:"from"`
	FirstActive int `json:"first_active"`
	// Oldest and Newest are the archived files of the chain (-1 when none), Files how many
	// there are, NewestAt when the newest archived file was written.
	Oldest   int       `json:"oldest"`
	Newest   int       `json:"newest"`
	Files    int       `json:"files"`
	NewestAt time.Time `json:"newest_at,omitzero"`
	// OlderChainFiles counts files of older log chains (kept: images taken before a restore
	// may need them).
	OlderChainFiles int `json:"older_chain_files,omitempty"`
	// Gaps are the runs of absent files from From on (at most MaxGaps; GapsOmitted counts the
	// others); Missing counts the missing files.
	Gaps        []Gap `json:"gaps,omitempty"`
	GapsOmitted int   `json:"gaps_omitted,omitempty"`
	Missing     int   `json:"missing"`
	// NotArchived names the files not archived yet (from Db2's first active log on).
	NotArchived string `json:"not_archived,omitempty"`
	// Broken is set when a file is missing inside the restorable range (from From to the
	// first active log): a point-in-time restore past it, or one to the end of the logs from
	// an image before it, fails.
	Broken bool `json:"broken"`
	// Deleter says who deletes archived logs: "db2" (AUTO_DEL_REC_OBJ=ON: Db2 deletes them
	// with its recovery history, keyguard does not) or "keyguard" (retention deletes only the
	// files older than From).
	Deleter string `json:"deleter"`
	// Deleted counts the files keyguard's retention deleted in this pass.
	Deleted int `json:"deleted,omitempty"`
	// Error says why the archive could not be listed (the report then holds nothing else).
	Error string `json:"error,omitempty"`
}

// Summary is the report in one line.
func (r Report) Summary() string {
	if r.Error != "" {
		return "archive not listed: " + r.Error
	}
	if r.Files == 0 {
		return fmt.Sprintf("no archived log in %s", r.Archive)
	}
	s := fmt.Sprintf("%d archived logs %s to %s (chain C%07d)", r.Files, Name(r.Oldest), Name(r.Newest), r.Chain)
	if r.From >= 0 {
		s += ", restorable range needs " + Name(r.From) + " on"
	}
	var gaps []string
	for _, g := range r.Gaps {
		gaps = append(gaps, g.String())
	}
	if len(gaps) > 0 {
		s += "; gaps: " + strings.Join(gaps, ", ")
		if r.GapsOmitted > 0 {
			s += fmt.Sprintf(" and %d more", r.GapsOmitted)
		}
	}
	if r.NotArchived != "" {
		s += "; not archived yet: " + r.NotArchived
	}
	return s
}

// FirstMissing returns the first missing gap at or after from and at or before to (log
// numbers), and whether there is one: what a roll-forward from an image's first log to a point
// in time would halt on.
func (r Report) FirstMissing(from, to int) (Gap, bool) {
	for _, g := range r.Gaps {
		if g.Kind == Missing && g.Last >= from && g.First <= to {
			return g, true
		}
	}
	return Gap{}, false
}

// Removable returns the files retention may delete: those of the checked chain and partition
// older than need.From (no kept chain or point-in-time window needs them). With autoDelete
// (Db2's AUTO_DEL_REC_OBJ=ON) it returns nothing: Db2 deletes them itself. With need.From
// unknown (-1) it returns nothing. Files of older chains are never returned. Pure.
func Removable(files []File, need Need, autoDelete bool) []File {
	if autoDelete || need.From < 0 {
		return nil
	}
	chain := need.Chain
	if chain < 0 {
		for _, f := range files {
			if f.Partition == need.Partition && f.Chain > chain {
				chain = f.Chain
			}
		}
	}
	var out []File
	for _, f := range files {
		if f.Partition == need.Partition && f.Chain == chain && f.Number < need.From {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b File) int { return a.Number - b.Number })
	return out
}
