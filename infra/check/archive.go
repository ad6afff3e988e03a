package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/keyguard-dev/keyguard/shared/config"
)

const (
	typeLockConfig  = "ibm_cos_bucket_object_lock_configuration"
	typeReplication = "ibm_cos_bucket_replication_rule"
)

// archivedPrefixes are what the archive keeps, under KEYGUARD_COS_PREFIX: image files and
// catalog entries. state/ (rewritten on every decision), config/ and restores/ stay out.
var archivedPrefixes = []string{"images/", "catalog/"}

// Archive checks Object Lock. The bucket the functions use is never locked (Object Lock has
// no prefix filter, and its state objects must stay rewritable and deletable). With
// archive_lock_days > 0, a replication rule on that bucket copies exactly the image and
// catalog prefixes, without delete markers, to an encrypted, versioned archive bucket whose
// Object Lock default retention has the days and mode asked for. (Access already rejects any
// grant of a function on a bucket other than its own.)
func Archive(e *Eval) []string {
	var p []string
	bucket, prefix := functionsBucket(e)
	if bucket == "" {
		return nil // Fleet reports it
	}
	if b := e.Lookup(bucket); b != nil {
		if on, ok := knownBool(mustValue(b.Node, "object_lock")); ok && on {
			p = append(p, bucket+": the functions' bucket must not use Object Lock (its state objects are rewritten and deleted); lock the archive instead")
		}
	}
	locks := map[string]*Instance{}
	for _, l := range e.Resources(typeLockConfig) {
		ref, ok := RefOf(mustValue(l.Node, "bucket_crn"))
		if !ok || ref.Attr != "crn" {
			p = append(p, l.Addr()+": bucket_crn must be a bucket's crn")
			continue
		}
		if ref.Addr == bucket {
			p = append(p, l.Addr()+": locks the functions' bucket, whose state objects must stay rewritable")
		}
		locks[ref.Addr] = l
	}
	days, _ := knownInt(e.Var("archive_lock_days"))
	if days == 0 {
		return p
	}
	mode, _ := knownString(e.Var("archive_lock_mode"))
	want := make([]string, len(archivedPrefixes))
	for i, a := range archivedPrefixes {
		want[i] = prefix + a
	}
	sort.Strings(want)
	var got []string
	archives := map[string]bool{}
	for _, r := range e.Resources(typeReplication) {
		ref, ok := RefOf(mustValue(r.Node, "bucket_crn"))
		if !ok || ref.Addr != bucket {
			continue
		}
		rules, err := r.Blocks("replication_rule")
		if err != nil {
			p = append(p, err.Error())
			continue
		}
		for _, rule := range rules {
			if on, ok := knownBool(mustValue(rule, "enable")); !ok || !on {
				continue
			}
			if dm, ok := knownBool(mustValue(rule, "deletemarker_replication_status")); !ok || dm {
				p = append(p, rule.Where+": deletemarker_replication_status must be false: retention's deletions must not reach the archive")
			}
			pre, _ := knownString(mustValue(rule, "prefix"))
			got = append(got, pre)
			if d, ok := RefOf(mustValue(rule, "destination_bucket_crn")); ok && d.Attr == "crn" {
				archives[d.Addr] = true
			} else {
				p = append(p, rule.Where+": destination_bucket_crn must be the archive bucket's crn")
			}
		}
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		p = append(p, fmt.Sprintf("with archive_lock_days > 0, %s must replicate exactly %v to the archive, replicates %v", bucket, want, got))
	}
	for a := range archives {
		b := e.Lookup(a)
		switch {
		case b == nil:
			p = append(p, "archive bucket "+a+" does not exist")
			continue
		case a == bucket:
			p = append(p, a+": the archive must be another bucket than the functions'")
			continue
		}
		if on, ok := knownBool(mustValue(b.Node, "object_lock")); !ok || !on {
			p = append(p, a+": the archive bucket must be created with object_lock = true")
		}
		if msg := versioned(b); msg != "" {
			p = append(p, msg)
		}
		l := locks[a]
		if l == nil {
			p = append(p, a+": the archive bucket has no "+typeLockConfig)
			continue
		}
		cfgs, _ := l.Blocks("object_lock_configuration")
		ok := len(cfgs) == 1 && isString(mustValue(cfgs[0], "object_lock_enabled"), "Enabled")
		if ok {
			rules, _ := cfgs[0].Blocks("object_lock_rule")
			ok = len(rules) == 1
			if ok {
				rets, _ := rules[0].Blocks("default_retention")
				ok = len(rets) == 1
				if ok {
					d, err := knownInt(mustValue(rets[0], "days"))
					ok = err == nil && d == days && isString(mustValue(rets[0], "mode"), mode)
				}
			}
		}
		if !ok {
			p = append(p, fmt.Sprintf("%s: the archive's Object Lock must be Enabled with a default retention of %d days in %s mode", l.Addr(), days, mode))
		}
	}
	if len(archives) == 0 {
		p = append(p, "with archive_lock_days > 0, no replication rule reaches an archive bucket")
	}
	sort.Strings(p)
	return p
}

// functionsBucket returns the bucket resource the functions' KEYGUARD_COS_BUCKET names, and
// their key prefix with its trailing "/" ("" without one).
func functionsBucket(e *Eval) (string, string) {
	for _, typ := range []string{typeApp, typeJob} {
		for _, i := range e.Resources(typ) {
			env, _ := envOf(i)
			ref, ok := RefOf(env[config.EnvCOSBucket].Value)
			if !ok {
				continue
			}
			prefix, _ := knownString(env[config.EnvCOSPrefix].Value)
			if prefix != "" && !strings.HasSuffix(prefix, "/") {
				prefix += "/"
			}
			return ref.Addr, prefix
		}
	}
	return "", ""
}
