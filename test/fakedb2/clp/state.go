package clp

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// StateEnv names the environment variable holding the state file's path.
const StateEnv = "FAKEDB2_STATE"

// Fault is an injected failure. Faults act when a command runs, whatever `get db cfg` reports,
// as if the database changed between keyguard's inspection and its backup.
type Fault string

// Faults.
const (
	// FaultOnlineNotAllowed fails online backups with SQL2413N.
	FaultOnlineNotAllowed Fault = "online-not-allowed"
	// FaultBackupPending fails connections and every backup but an offline full one with
	// SQL1116N, while `get db cfg` still says "Backup pending = NO".
	FaultBackupPending Fault = "backup-pending"
	// FaultTrackModOff fails incremental and delta backups with SQL2426N.
	FaultTrackModOff Fault = "trackmod-off"
	// FaultDiskFull writes half an image, removes it and fails with SQL2419N.
	FaultDiskFull Fault = "disk-full"
	// FaultKeyUnavailable fails connections, GET_DBSIZE_INFO and backups with SQL1728N (the
	// native encryption keystore cannot be reached), as during a root key rotation.
	FaultKeyUnavailable Fault = "key-unavailable"
	// FaultCorruptImage lets the backup succeed but flips one byte of the image body, so
	// db2ckbkp reports a checksum error.
	FaultCorruptImage Fault = "corrupt-image"
	// FaultRestoreMedia fails an automatic incremental restore with SQL2062N while it reads the
	// second image of the chain, leaving the database restore pending until RESTORE ...
	// INCREMENTAL ABORT.
	FaultRestoreMedia Fault = "restore-media"
)

// Faults lists every fault.
func Faults() []Fault {
	return []Fault{FaultOnlineNotAllowed, FaultBackupPending, FaultTrackModOff, FaultDiskFull, FaultKeyUnavailable, FaultCorruptImage, FaultRestoreMedia}
}

// State is the fake database, read from and written back to the state file by every command.
type State struct {
	// Database is the one database alias the fake knows (upper case, e.g. SAMPLE).
	Database string `json:"database"`
	// Instance appears in image names; db2inst1 when empty.
	Instance string `json:"instance,omitempty"`
	// LogArchMeth1 is OFF when empty; anything else (e.g. DISK:/archive/) allows online backups.
	LogArchMeth1       string `json:"logarchmeth1,omitempty"`
	TrackMod           bool   `json:"trackmod,omitempty"`
	BackupPending      bool   `json:"backup_pending,omitempty"`
	RollforwardPending bool   `json:"rollforward_pending,omitempty"`
	Encrypted          bool   `json:"encrypted,omitempty"`
	// KeystoreLocation, when set, is a local PKCS#12 keystore (KEYSTORE_TYPE PKCS12) that
	// `get dbm cfg` reports.
	KeystoreLocation string `json:"keystore_location,omitempty"`
	// Applications is the number of connected applications besides the CLP's own connection.
	Applications int `json:"applications,omitempty"`
	// SizeBytes is DATABASESIZE (ImageBytes when 0); CapacityBytes is DATABASECAPACITY (-1 when 0).
	SizeBytes     int64 `json:"size_bytes,omitempty"`
	CapacityBytes int64 `json:"capacity_bytes,omitempty"`
	// ImageBytes is the exact size of every image file (1 MiB when 0; at least MinImageBytes).
	ImageBytes int64 `json:"image_bytes,omitempty"`
	// NextTimestamp (yyyymmddhhmmss) is the timestamp of the next backup, advanced by one second
	// by each backup; when empty the current UTC time is used.
	NextTimestamp string  `json:"next_timestamp,omitempty"`
	Inject        []Fault `json:"inject,omitempty"`
	// Connected is the CLP session's own connection (connect to / connect reset / terminate).
	Connected bool `json:"connected,omitempty"`
	// History is Db2's recovery history: every successful backup, oldest first, including
	// those whose image file was deleted afterwards (written by the fake; `list history backup`
	// prints it).
	History []Backup `json:"history,omitempty"`
	// Calls is every command line received, oldest first (written by the fake).
	Calls []string `json:"calls,omitempty"`
	// Restores is every successful RESTORE DATABASE, oldest first (written by the fake).
	Restores []Restore `json:"restores,omitempty"`

	// Rows is the database's data, as a count of rows: Write adds to it, a restore sets it to
	// the image's and a roll-forward adds the writes it replays.
	Rows int64 `json:"rows,omitempty"`
	// Writes are the committed transactions, oldest first (see Write), each in the log file that
	// was active when it committed.
	Writes []Write `json:"writes,omitempty"`
	// LogSeq is the number of the active log file (S<LogSeq>.LOG, 7 digits). A backup of a
	// recoverable database and ARCHIVE LOG close it into Archived and open the next.
	LogSeq int `json:"log_seq,omitempty"`
	// Archived are the archived log files, oldest first (LIST HISTORY ARCHIVE LOG prints them).
	Archived []ArchivedLog `json:"archived,omitempty"`
	// Partitions are the database partitions of a partitioned (DPF) database, e.g. [0, 1]; a
	// single-partition database when it has fewer than two. CatalogPartition is the one that
	// holds the catalog (LIST DATABASE DIRECTORY reports it).
	Partitions       []int `json:"partitions,omitempty"`
	CatalogPartition int   `json:"catalog_partition,omitempty"`
	// CurrentPartition is the partition the CLP session's commands go to (SET CLIENT
	// CONNECT_DBPARTITIONNUM).
	CurrentPartition int `json:"current_partition,omitempty"`
	// RestoredPartitions are the partitions restored so far from the image RestoringImage,
	// in order: a partition other than the catalog partition is refused before it.
	RestoredPartitions []int  `json:"restored_partitions,omitempty"`
	RestoringImage     string `json:"restoring_image,omitempty"`
	// TablespacesPending are the table spaces a table space restore left rollforward pending
	// (until ROLLFORWARD ... TABLESPACE (...) ONLINE), with the image they came from.
	TablespacesPending []string `json:"tablespaces_pending,omitempty"`
	TablespaceImage    string   `json:"tablespace_image,omitempty"`
	// AutoDelRecObj is AUTO_DEL_REC_OBJ=ON as `get db cfg` reports it.
	AutoDelRecObj bool `json:"auto_del_rec_obj,omitempty"`
	// MissingLogs names archived log files that are gone from the archive: a roll-forward that
	// needs one halts with SQL4970N unless the file is in its overflow log path.
	MissingLogs []string `json:"missing_logs,omitempty"`
	// RestorePending is set by an incremental or redirected restore that did not finish, until
	// RESTORE ... ABORT.
	RestorePending bool `json:"restore_pending,omitempty"`
	// Quiesced is set by QUIESCE DATABASE and cleared by UNQUIESCE or a restore.
	Quiesced bool `json:"quiesced,omitempty"`
	// Dropped is set once DROP DATABASE dropped the fake's own database.
	Dropped bool `json:"dropped,omitempty"`
	// ConnectedTo is the alias the CLP session is connected to when it is not Database.
	ConnectedTo string `json:"connected_to,omitempty"`
	// Copies are the databases RESTORE ... INTO created from the fake's images.
	Copies []Copy `json:"copies,omitempty"`
	// Redirected is a redirected restore waiting for SET STOGROUP PATHS and RESTORE ...
	// CONTINUE (or ABORT).
	Redirected *Restore `json:"redirected,omitempty"`
	// Queries is every SQL statement run through the CLP, oldest first (written by the fake).
	Queries []string `json:"queries,omitempty"`
}

// Write is one committed transaction.
type Write struct {
	At   time.Time `json:"at"`
	Rows int64     `json:"rows"`
	// Log is the number of the log file it was written to.
	Log int `json:"log"`
}

// ArchivedLog is one archived log file and the time its records span.
type ArchivedLog struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Copy is a database created by RESTORE ... INTO from an image of the fake's database.
type Copy struct {
	Name               string   `json:"name"`
	Rows               int64    `json:"rows"`
	RollforwardPending bool     `json:"rollforward_pending,omitempty"`
	RestorePending     bool     `json:"restore_pending,omitempty"`
	StoragePaths       []string `json:"storage_paths,omitempty"`
}

// LogName is the file name of log number n.
func LogName(n int) string { return fmt.Sprintf("S%07d.LOG", n) }

// AddWrite commits a transaction of rows at time at into the active log file.
func (s *State) AddWrite(at time.Time, rows int64) {
	s.Writes = append(s.Writes, Write{At: at.UTC(), Rows: rows, Log: s.LogSeq})
	s.Rows += rows
}

// closeLog archives the active log file (its records end at end, or at its last write when
// later) and opens the next one.
func (s *State) closeLog(end time.Time) {
	var start time.Time
	if n := len(s.Archived); n > 0 {
		start = s.Archived[n-1].End
	}
	for _, w := range s.Writes {
		if w.Log == s.LogSeq && w.At.After(end) {
			end = w.At
		}
		if w.Log == s.LogSeq && (start.IsZero() || w.At.Before(start)) {
			start = w.At
		}
	}
	if start.IsZero() {
		start = end
	}
	if end.Before(start) {
		end = start
	}
	s.Archived = append(s.Archived, ArchivedLog{Name: LogName(s.LogSeq), Start: start, End: end})
	if dir, ok := s.ArchiveDir(); ok {
		// Db2 copies the closed file into the archive; the fake writes its name and span.
		if os.MkdirAll(dir, 0o755) == nil {
			_ = os.WriteFile(filepath.Join(dir, LogName(s.LogSeq)), fmt.Appendf(nil, "fake db2 log %s %s %s\n", LogName(s.LogSeq),
				start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano)), 0o644)
		}
	}
	s.LogSeq++
}

// ArchiveDir is where Db2 archives log files of chain 0 when LOGARCHMETH1 is DISK:<path> and
// <path> exists: <path>/<instance>/<DATABASE>/NODE0000/LOGSTREAM0000/C0000000. ok is false for
// other methods, or a path that does not exist (the fake then keeps its archive in the state
// alone).
func (s *State) ArchiveDir() (string, bool) {
	m := s.logArchMeth1()
	if len(m) < 6 || !strings.EqualFold(m[:5], "DISK:") {
		return "", false
	}
	base := m[5:]
	if st, err := os.Stat(base); err != nil || !st.IsDir() {
		return "", false
	}
	return filepath.Join(base, s.instance(), strings.ToUpper(s.Database), "NODE0000", "LOGSTREAM0000", "C0000000"), true
}

// inArchive reports whether archived log n can be read from the archive: not named in
// MissingLogs and, for a DISK archive on this machine, its file is there.
func (s *State) inArchive(n int) bool {
	if slices.Contains(s.MissingLogs, LogName(n)) {
		return false
	}
	if dir, ok := s.ArchiveDir(); ok && n < s.LogSeq {
		if _, err := os.Stat(filepath.Join(dir, LogName(n))); err != nil {
			return false
		}
	}
	return true
}

// partitioned reports whether the database has several partitions.
func (s *State) partitioned() bool { return len(s.Partitions) > 1 }

// Restore is one RESTORE DATABASE the fake ran.
type Restore struct {
	// Tablespaces are the table spaces of a table space restore (RESTORE ... TABLESPACE (...)
	// ONLINE); Partition the partition a restore of a partitioned database ran on.
	Tablespaces []string `json:"tablespaces,omitempty"`
	Partition   int      `json:"partition,omitempty"`
	// Timestamp is the TAKEN AT image (the target of an incremental restore).
	Timestamp string `json:"timestamp"`
	// Incremental is INCREMENTAL, Automatic INCREMENTAL AUTOMATIC.
	Incremental bool `json:"incremental,omitempty"`
	Automatic   bool `json:"automatic,omitempty"`
	// Images are the timestamps of the images read, in the order Db2 applied them.
	Images []string `json:"images"`
	// From is the directory the images were read from.
	From                  string `json:"from"`
	WithoutRollingForward bool   `json:"without_rolling_forward,omitempty"`
	// RollForward is what the ROLLFORWARD ... AND STOP that ended the pending state went to
	// ("END OF LOGS" or the UTC stop time); empty until then.
	RollForward string `json:"roll_forward,omitempty"`
	// Into is the database restored into when it is not the fake's own (RESTORE ... INTO).
	Into string `json:"into,omitempty"`
	// LogTarget is where the image's logs were extracted (LOGTARGET); StoragePaths the storage
	// group paths a redirected restore set.
	LogTarget    string   `json:"log_target,omitempty"`
	StoragePaths []string `json:"storage_paths,omitempty"`
	// Rows is the restored database's data after the restore (and after its roll-forward).
	Rows int64 `json:"rows,omitempty"`
	// Replace is REPLACE EXISTING.
	Replace bool `json:"replace,omitempty"`
}

// Backup is one image the fake wrote.
type Backup struct {
	Timestamp   string   `json:"timestamp"`
	Type        string   `json:"type"`
	Mode        string   `json:"mode"`
	Tablespaces []string `json:"tablespaces,omitempty"`
	IncludeLogs bool     `json:"include_logs,omitempty"`
	Compress    bool     `json:"compress,omitempty"`
	Image       string   `json:"image"`
	SizeBytes   int64    `json:"size_bytes"`
	SHA256      string   `json:"sha256"`
	// Base is the image this one was built on, as Db2 chooses it from its history: for an
	// incremental the latest full of the same object (database, or the same table spaces), for
	// a delta the latest backup of any type of that object; empty for a full.
	Base string `json:"base,omitempty"`
	// EID is the history entry's id.
	EID int `json:"eid,omitempty"`
	// Rows is the database's data when the image was taken; Log the log file active during the
	// backup (the one an online image with INCLUDE LOGS carries).
	Rows int64 `json:"rows,omitempty"`
	Log  int   `json:"log,omitempty"`
}

// object names what b backed up: the database, or its table spaces.
func (b Backup) object() string {
	if len(b.Tablespaces) == 0 {
		return "database"
	}
	ts := slices.Clone(b.Tablespaces)
	slices.Sort(ts)
	return strings.Join(ts, ",")
}

// Has reports whether fault f is injected.
func (s *State) Has(f Fault) bool { return slices.Contains(s.Inject, f) }

func (s *State) instance() string {
	if s.Instance == "" {
		return "db2inst1"
	}
	return s.Instance
}

func (s *State) logArchMeth1() string {
	if s.LogArchMeth1 == "" {
		return "OFF"
	}
	return s.LogArchMeth1
}

func (s *State) recoverable() bool { return s.logArchMeth1() != "OFF" }

func (s *State) imageBytes() int64 {
	n := s.ImageBytes
	if n == 0 {
		n = 1 << 20
	}
	return max(n, MinImageBytes)
}

// Load reads the state file.
func Load(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fake db2 state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse fake db2 state %s: %w", path, err)
	}
	if s.Database == "" {
		return nil, fmt.Errorf("fake db2 state %s: database is required", path)
	}
	for _, f := range s.Inject {
		if !slices.Contains(Faults(), f) {
			return nil, fmt.Errorf("fake db2 state %s: unknown fault %q", path, f)
		}
	}
	return &s, nil
}

// Save writes the state file atomically (temporary file, then rename).
func Save(path string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode fake db2 state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fakedb2-state-*")
	if err != nil {
		return fmt.Errorf("save fake db2 state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save fake db2 state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save fake db2 state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save fake db2 state: %w", err)
	}
	return nil
}
