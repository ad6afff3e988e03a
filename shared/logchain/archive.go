package logchain

import (
	"path/filepath"
	"strings"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2"
)

// ArchiveOf is where db's archived logs can be listed, from the fleet policy and the database
// configuration: log_archive.cos_prefix in keyguard's bucket objs, log_archive.dir, or
// LOGARCHMETH1's DISK:<path>, each under <instance>/<DATABASE>/ as Db2 archives them. ok is
// false when they cannot be listed (TSM, VENDOR, a DB2REMOTE archive without cos_prefix, no
// archiving, or a cos_prefix without objs), with the reason.
func ArchiveOf(db config.Database, cfg db2.DBConfig, objs ObjectStore) (Lister, string, bool) {
	kind, target := db2.ArchiveTarget(cfg.LogArchMeth1)
	inst, alias := db.Db2Instance(), strings.ToUpper(db.Alias)
	switch {
	case db.LogArchive.COSPrefix != "":
		if objs == nil {
			return nil, "no object store to list log_archive.cos_prefix in", false
		}
		return Objects{Store: objs, Prefix: strings.TrimSuffix(db.LogArchive.COSPrefix, "/") + "/" + inst + "/" + alias + "/"}, "", true
	case db.LogArchive.Dir != "":
		return Dir{Root: filepath.Join(db.LogArchive.Dir, inst, alias)}, "", true
	case kind == "DISK" && target != "":
		return Dir{Root: filepath.Join(target, inst, alias)}, "", true
	case kind == "DB2REMOTE":
		return nil, "LOGARCHMETH1 is " + cfg.LogArchMeth1 + ": set log_archive.cos_prefix to list it", false
	}
	return nil, "LOGARCHMETH1 is " + cfg.LogArchMeth1 + ": not an archive keyguard can list", false
}
