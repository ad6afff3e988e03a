package clp

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// setPartition is SET CLIENT CONNECT_DBPARTITIONNUM n: the session's later commands (RESTORE)
// go to partition n.
func (c *session) setPartition(arg string) int {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 0 || n > 999 || (c.s.partitioned() && !slices.Contains(c.s.Partitions, n)) {
		return c.fail("SQL1469N  The database partition number %q is not valid.", arg)
	}
	c.s.CurrentPartition = n
	c.printf("DB20000I  The SET CLIENT command completed successfully.\n")
	return exitOK
}

// listDirectory prints LIST DATABASE DIRECTORY: the fake's database and its copies, each with
// its catalog database partition number.
func (c *session) listDirectory() int {
	names := []string{}
	if !c.s.Dropped {
		names = append(names, c.s.Database)
	}
	for _, cp := range c.s.Copies {
		names = append(names, cp.Name)
	}
	c.printf("\n System Database Directory\n\n Number of entries in the directory = %d\n\n", len(names))
	for i, n := range names {
		cat := 0
		if n == c.s.Database {
			cat = c.s.CatalogPartition
		}
		c.printf("Database %d entry:\n\n Database alias                       = %s\n Database name                        = %s\n", i+1, n, n)
		c.printf(" Local database directory             = /database\n Database release level               = 15.00\n Comment                              =\n")
		c.printf(" Directory entry type                 = Indirect\n Catalog database partition number    = %d\n\n", cat)
	}
	return exitOK
}

// partitionImage is the file name of partition part's image of the database (type 0) or of
// table spaces (type 3) taken at ts.
func (c *session) partitionImage(objType, part int, ts string) string {
	return c.s.Database + "." + strconv.Itoa(objType) + "." + c.s.instance() + ".DBPART" + pad3(part) + "." + ts + ".001"
}

func pad3(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 3 {
		s = "0" + s
	}
	return s
}

// restorePartition applies the partition rules of a partitioned database to a RESTORE of its
// own database from image ts: the catalog partition first (it starts a new restore of the
// image), then each other partition once. It reports done when the restore of a partition other
// than the catalog partition is complete (the catalog partition's restore goes on as a database
// restore), or a failure code.
func (c *session) restorePartition(dir, ts string) (done bool, code int) {
	s := c.s
	part := s.CurrentPartition
	if _, err := os.Stat(filepath.Join(dir, c.partitionImage(0, part, ts))); err != nil {
		return true, c.noImage(ts)
	}
	if part == s.CatalogPartition {
		s.RestoredPartitions, s.RestoringImage = []int{part}, ts
		return false, exitOK
	}
	if s.RestoringImage != ts || !slices.Contains(s.RestoredPartitions, s.CatalogPartition) {
		// The exact message Db2 gives is not confirmed; SQL2551N is the fake's choice.
		return true, c.fail("SQL2551N  Database with catalog partition %d cannot be restored on database \npartition %d first: restore the catalog partition first.", s.CatalogPartition, part)
	}
	if !slices.Contains(s.RestoredPartitions, part) {
		s.RestoredPartitions = append(s.RestoredPartitions, part)
	}
	s.Restores = append(s.Restores, Restore{Timestamp: ts, Images: []string{ts}, From: dir, Partition: part})
	c.printf("DB20000I  The RESTORE DATABASE command completed successfully.\n")
	return true, exitOK
}

// restoreTablespaces is RESTORE DATABASE <db> TABLESPACE (...) ONLINE [INCREMENTAL AUTOMATIC]
// TAKEN AT ts FROM dir: the table spaces come from a table space image that holds them all or
// from a database image, and are left rollforward pending until ROLLFORWARD ... TABLESPACE
// (...) ONLINE; the rest of the database stays in use.
func (c *session) restoreTablespaces(r restoreCmd, dir string) int {
	s := c.s
	if !c.known(r.db) || r.into != "" {
		return c.notFound(r.db)
	}
	if !r.online {
		return c.fail("SQL1035N  The operation failed because the specified database cannot be \nconnected to in the mode requested.  SQLSTATE=57019")
	}
	b, ok := c.backupAt(r.ts)
	if !ok {
		return c.noImage(r.ts)
	}
	objType := 0
	if len(b.Tablespaces) > 0 {
		objType = 3
		for _, ts := range r.tablespaces {
			if !slices.Contains(b.Tablespaces, ts) {
				return c.fail("SQL2560N  The table space %q is not in the backup image.", ts)
			}
		}
	}
	v, err := VerifyImage(filepath.Join(dir, c.partitionImage(objType, s.CurrentPartition, r.ts)))
	if err != nil || v.Meta.Timestamp != r.ts {
		return c.noImage(r.ts)
	}
	s.TablespacesPending, s.TablespaceImage = slices.Clone(r.tablespaces), r.ts
	s.Restores = append(s.Restores, Restore{Timestamp: r.ts, Images: []string{r.ts}, From: dir, Tablespaces: slices.Clone(r.tablespaces),
		Incremental: r.incr, Automatic: r.auto, Rows: s.Rows})
	c.printf("DB20000I  The RESTORE DATABASE command completed successfully.\n")
	return exitOK
}

// rollforwardTablespaces is ROLLFORWARD DATABASE <db> TO END OF LOGS AND STOP TABLESPACE (...)
// ONLINE after a table space restore: every log from the image's on must be readable.
func (c *session) rollforwardTablespaces(r rollforwardCmd) int {
	s := c.s
	if !r.endOfLogs || !r.stop {
		return c.fail("SQL4912N  A table space rollforward to a point in time is not offered by the fake: roll forward to the end of the logs.")
	}
	for _, ts := range r.tablespaces {
		if !slices.Contains(s.TablespacesPending, ts) {
			return c.fail("SQL4906N  The table space list is not valid: %s is not in rollforward pending state.", ts)
		}
	}
	b, _ := c.backupAt(s.TablespaceImage)
	for n := b.Log; n < s.LogSeq; n++ {
		if !s.inArchive(n) {
			return c.fail("SQL4970N  Roll-forward recovery on database %q cannot reach the specified stop \npoint (end-of-log or point-in-time) on database partition(s) \"0\". Roll-forward \nrecovery processing has halted on log file %q.", s.Database, LogName(n))
		}
	}
	s.TablespacesPending = slices.DeleteFunc(s.TablespacesPending, func(t string) bool { return slices.Contains(r.tablespaces, t) })
	if len(s.Restores) > 0 {
		s.Restores[len(s.Restores)-1].RollForward = "END OF LOGS"
	}
	c.status(s.Database, "not pending", c.lastClose())
	c.printf("DB20000I  The ROLLFORWARD command completed successfully.\n")
	return exitOK
}
