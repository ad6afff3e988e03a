package preflight

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// Areas of the report.
const (
	AreaCredentials = "credentials"
	AreaCOS         = "cos"
	AreaKeys        = "keyprotect"
	AreaIAM         = "iam"
	AreaEvents      = "events"
	AreaExecutors   = "executors"
	AreaFleet       = "fleet"
)

// checks lists the run's checks. The fleet policy is read first: keys, databases and executors
// come from it.
func (p *run) checks(ctx context.Context) []Check {
	fleet, ferr := p.d.Fleet.Fleet(ctx)
	cs := []Check{
		{AreaCredentials, "iam token", p.credentials},
		{AreaCOS, "bucket " + p.d.BucketName, p.bucket},
		{AreaCOS, "versioning, object lock", p.bucketConfig},
		{AreaCOS, "object round trip", p.roundTrip},
		{AreaCOS, "least privilege", p.leastPrivilege},
		{AreaFleet, "fleet policy", func(context.Context) []Result {
			if ferr != nil {
				return fail(ferr.Error(), "fix the fleet policy (shared/config/fleet.example.yaml documents every field) and upload it again (terraform apply)")
			}
			return ok(plural(len(fleet.Databases), "database") + ", " + plural(len(fleetKeys(fleet)), "key"))
		}},
	}
	if ferr == nil {
		cs = append(cs, Check{AreaFleet, "executors", func(context.Context) []Result { return p.executorMap(fleet) }})
		keys := fleetKeys(fleet)
		for i, crn := range keys {
			if i == p.o.MaxPerKind {
				cs = append(cs, Check{AreaKeys, "more keys", func(context.Context) []Result {
					return skip(fmt.Sprintf("%d more keys not checked (at most %d per run)", len(keys)-i, p.o.MaxPerKind))
				}})
				break
			}
			cs = append(cs, Check{AreaKeys, "key " + shortCRN(crn), func(ctx context.Context) []Result { return p.key(ctx, fleet, crn) }})
		}
		cs = append(cs, Check{AreaIAM, "authorizations", func(ctx context.Context) []Result { return p.authorizations(ctx, fleet) }})
	}
	cs = append(cs,
		Check{AreaEvents, "source " + p.d.SourceID, p.source},
		Check{AreaEvents, "routes", p.routes},
		Check{AreaEvents, "route scheduler " + config.PathTick + " (periodic)", p.tick},
		Check{AreaEvents, "alerts", p.alerts},
	)
	if ferr == nil {
		cs = append(cs, Check{AreaExecutors, "runner job " + p.d.RunnerJob, func(ctx context.Context) []Result { return p.runnerJob(ctx, fleet) }})
		cs = append(cs, p.db2Checks(fleet)...)
		cs = append(cs, Check{AreaExecutors, "host agents", func(ctx context.Context) []Result { return p.agents(ctx, fleet) }})
	}
	return cs
}

// fleetKeys lists the root keys of a fleet policy: its databases' keys, their keystore keys and
// its keys: entries, in first-use order.
func fleetKeys(f *config.Fleet) []string {
	var out []string
	add := func(k string) {
		if k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	for _, db := range f.Databases {
		add(db.KeyCRN)
		add(db.KeystoreKeyCRN)
	}
	for _, k := range f.Keys {
		add(k.CRN)
	}
	return out
}

// crnPart returns field i of a CRN (crn:v1:bluemix:public:<service>:<location>:a/<account>:
// <instance>:<resource type>:<resource>), or "".
func crnPart(crn string, i int) string {
	parts := strings.Split(crn, ":")
	if len(parts) < 10 || parts[0] != "crn" || i >= len(parts) {
		return ""
	}
	return parts[i]
}

// shortCRN abbreviates a CRN for the table: its resource (a key id) or instance.
func shortCRN(crn string) string {
	if r := crnPart(crn, 9); r != "" {
		return r
	}
	if i := crnPart(crn, 7); i != "" {
		return i
	}
	return crn
}

// refused reports whether err is a refusal for lack of access: an HTTP 401 / 403 or an error
// of kind configuration (how the adapters report refused credentials).
func refused(err error) bool {
	if status, _ := objstore.S3Error(err); status == 401 || status == 403 {
		return true
	}
	return errkind.Of(err) == errkind.Configuration
}

func (p *run) credentials(ctx context.Context) []Result {
	if p.d.Credentials == nil {
		return skip("no IAM credentials configured (HMAC keys only): the checks that need IAM are skipped")
	}
	id, err := p.d.Credentials.Token(ctx)
	if err != nil {
		return fail("no IAM token: "+err.Error(),
			"check KEYGUARD_API_KEY (an API key of an existing, unlocked identity) or, inside Code Engine, that the trusted profile in KEYGUARD_TRUSTED_PROFILE is linked to this app or job; KEYGUARD_IAM_URL must be IAM's URL")
	}
	p.setIdentity(id)
	d := "token for " + orUnknown(id.Subject)
	if id.Account != "" {
		d += ", account " + id.Account
	}
	if !id.Expires.IsZero() {
		d += ", valid until " + id.Expires.UTC().Format("2006-01-02 15:04Z")
	}
	return ok(d)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unnamed identity"
	}
	return s
}

func (p *run) bucket(ctx context.Context) []Result {
	if p.d.Bucket == nil {
		return skip("the bucket's Key Protect settings are read only on IBM Cloud Object Storage (HMAC-only store)")
	}
	h, err := p.d.Bucket.Head(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		return fail("the bucket does not exist", "check KEYGUARD_COS_BUCKET and KEYGUARD_COS_ENDPOINT (the bucket's region or cross-region endpoint)")
	case refused(err):
		return fail("access to the bucket refused: "+err.Error(), "give this identity the custom role `<prefix> objects` on the bucket (terraform output object_roles)")
	case err != nil:
		return fail("cannot read the bucket: "+err.Error(), "check KEYGUARD_COS_ENDPOINT and the network")
	}
	if !h.KeyProtect || h.RootKeyCRN == "" {
		return fail("the bucket is not encrypted with a Key Protect root key",
			"create the bucket with kms_key_crn (the module always does): Object Storage cannot add Key Protect encryption to an existing bucket")
	}
	d := "exists, encrypted with Key Protect root key " + shortCRN(h.RootKeyCRN)
	if p.d.Keys != nil {
		k, err := p.d.Keys.Key(ctx, h.RootKeyCRN)
		switch {
		case err != nil && refused(err):
			d += " (this identity may not read that key)"
		case err != nil:
			return fail(d+"; the root key cannot be read: "+err.Error(), "check the bucket's root key in Key Protect: the bucket is unreadable while it is not active")
		case !k.State.Usable():
			return fail(d+", which is "+string(k.State)+": the bucket's objects cannot be read or written",
				"enable or restore the root key in Key Protect")
		default:
			d += " (active)"
		}
	}
	return ok(d)
}

func (p *run) bucketConfig(ctx context.Context) []Result {
	if p.d.BucketConfig == nil {
		return skip("not read: this identity's role does not cover the bucket's configuration (an operator's does)")
	}
	v, err := p.d.BucketConfig.Versioning(ctx)
	if err != nil {
		if p.d.BucketConfig.Refused(err) {
			return skip("this identity may not read the bucket's configuration (403), as the custom roles intend; run the preflight with an identity holding Reader on the bucket to check versioning and Object Lock")
		}
		return fail("cannot read the bucket's versioning: "+err.Error(), "check KEYGUARD_COS_ENDPOINT and the network")
	}
	lock, err := p.d.BucketConfig.ObjectLock(ctx)
	if err != nil {
		return fail("cannot read the bucket's Object Lock configuration: "+err.Error(), "check KEYGUARD_COS_ENDPOINT and the network")
	}
	var probs, fixes []string
	if v != "Enabled" {
		probs = append(probs, fmt.Sprintf("versioning is %q, not Enabled: an overwritten state or catalog object cannot be recovered", orNone(v)))
		fixes = append(fixes, "enable versioning on the bucket (the module's ibm_cos_bucket sets object_versioning)")
	}
	if lock {
		probs = append(probs, "Object Lock is configured on the keyguard bucket: retained versions of state objects pile up and retention cannot delete images")
		fixes = append(fixes, "keep the keyguard bucket unlocked and protect images with the archive bucket (archive_lock_days)")
	}
	if len(probs) > 0 {
		return fail(strings.Join(probs, "; "), strings.Join(fixes, "; "))
	}
	return ok("versioning Enabled, no Object Lock (as the module sets the keyguard bucket)")
}

func orNone(s string) string {
	if s == "" {
		return "never configured"
	}
	return s
}

func (p *run) roundTrip(ctx context.Context) []Result {
	key := RunPrefix(p.o.RunID) + "probe.json"
	body := []byte(fmt.Sprintf(`{"run_id":%q,"probe":"object round trip"}`, p.o.RunID))
	objs := p.d.Objects
	if _, err := objs.Put(ctx, key, body, objstore.Cond{IfNoneMatch: true}); err != nil {
		if refused(err) {
			return fail("writing "+key+" was refused: "+err.Error(),
				"give this identity the custom role `<prefix> objects` on the bucket (terraform output object_roles); with api_key or cos_hmac it is that key's identity that needs it")
		}
		return fail("writing "+key+" failed: "+err.Error(), "check KEYGUARD_COS_ENDPOINT, KEYGUARD_COS_BUCKET and the network")
	}
	got, _, err := objs.Get(ctx, key)
	switch {
	case err != nil && refused(err):
		return fail("reading back "+key+" was refused: "+err.Error(), "give this identity the custom role `<prefix> objects` on the bucket")
	case err != nil:
		return fail("reading back "+key+" failed: "+err.Error(), "check the endpoint and the network")
	case !bytes.Equal(got, body):
		return fail("reading back "+key+" gave other bytes than were written", "check that nothing else writes under "+Prefix)
	}
	_, err = objs.Put(ctx, key, body, objstore.Cond{IfNoneMatch: true})
	switch {
	case err == nil:
		return fail("a create-only write (If-None-Match: *) replaced an existing object: keyguard's state objects would not be safe from concurrent writers",
			"use an object store that honours conditional writes (IBM Cloud Object Storage does)")
	case !errors.Is(err, objstore.ErrPrecondition):
		return fail("the second create-only write failed otherwise than with 412: "+err.Error(), "check the endpoint and the network")
	}
	d := "put, get and create-only put (412 on an existing object) under " + Prefix
	err = objs.Delete(ctx, key)
	switch {
	case err == nil && p.d.CanDelete:
		return ok(d + "; delete")
	case err == nil:
		return fail(d+"; but this identity may delete objects, which only the completion function (retention) needs",
			"drop `<prefix> object delete` from this identity: only completion's trusted profile holds it")
	case refused(err) && !p.d.CanDelete:
		return ok(d + "; delete refused, as this identity's role intends (the object expires with " + Prefix + ")")
	case refused(err):
		return fail(d+"; but delete was refused: "+err.Error(), "give this identity the custom role `<prefix> object delete` too (retention and backup delete need it)")
	default:
		return fail(d+"; delete failed: "+err.Error(), "check the endpoint and the network")
	}
}

func (p *run) leastPrivilege(ctx context.Context) []Result {
	if p.d.BucketConfig == nil {
		return skip("not tested: it needs the bucket's configuration, which this identity's role does not cover")
	}
	bc := p.d.BucketConfig
	v, err := bc.Versioning(ctx)
	switch {
	case err != nil && bc.Refused(err):
		return ok("this identity may not even read the bucket's versioning, so it holds no Writer or Manager role on the bucket (both include reading it)")
	case err != nil:
		return fail("cannot read the bucket's versioning: "+err.Error(), "check the endpoint and the network")
	case v == "":
		return skip("cannot be tested without harm: the bucket's versioning was never configured, and writing any status would change it")
	}
	err = bc.PutVersioning(ctx, v)
	switch {
	case err == nil && p.d.Operator:
		return skip(fmt.Sprintf("this identity, an operator's, may change the bucket's versioning (it wrote back %q, changing nothing): right for an operator, wrong for the functions. If the functions use this API key (api_key in the module), give it the custom roles instead; their own trusted profiles are probed by the scheduler's preflight at start (its log)", v))
	case err == nil:
		return fail(fmt.Sprintf("this identity can change the bucket's versioning (it wrote back %q, changing nothing): it holds Writer or Manager on the bucket, so it could also suspend versioning or delete object versions", v),
			"give it the custom roles `<prefix> objects` (and `<prefix> object delete` where needed) instead of Writer or Manager (terraform output object_roles)")
	case bc.Refused(err):
		return ok("changing the bucket's versioning is refused (403), as it should be")
	default:
		return fail("the versioning probe failed otherwise than with a refusal: "+err.Error(), "check the endpoint and the network")
	}
}

// executorMap checks that every database maps to an executor this deployment has.
func (p *run) executorMap(f *config.Fleet) []Result {
	counts := map[string]int{}
	var probs []string
	for _, db := range f.Databases {
		k := db.ExecutorKey()
		counts[k]++
		var why string
		switch {
		case k == config.ExecDb2SaaS && p.d.Db2 == nil:
			why = "executor db2saas, but the Db2 on Cloud API is not configured (KEYGUARD_DB2SAAS_URL)"
		case k == config.ExecDb2CLI && p.d.Jobs == nil:
			why = "executor db2cli (runner: job), but no Code Engine project is configured (KEYGUARD_CE_PROJECT_ID, KEYGUARD_CE_REGION, KEYGUARD_CE_RUNNER_JOB)"
		case k == config.ExecDb2SaaS, k == config.ExecDb2CLI, k == config.ExecDb2CLI+"-"+config.RunnerHost:
		case p.d.TestExecutors[db.Executor] != "":
		default:
			why = fmt.Sprintf("executor %q is not one this deployment has", db.Executor)
		}
		if why != "" {
			probs = append(probs, db.Name+": "+why)
		}
	}
	if len(probs) > 0 {
		return fail(limit(probs, 10), "configure the executor the databases name (the scheduler's environment), or change their executor in the fleet policy")
	}
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
		if d := p.d.TestExecutors[k]; d != "" {
			parts[i] += " (" + d + ")"
		}
	}
	return ok("every database maps to an executor: " + strings.Join(parts, ", "))
}

// limit joins at most n items, saying how many more there are.
func limit(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:n], "; ") + fmt.Sprintf("; and %d more", len(items)-n)
}

func (p *run) key(ctx context.Context, f *config.Fleet, crn string) []Result {
	if p.d.Keys == nil {
		return skip("Key Protect is not configured (KEYGUARD_KP_URL, KEYGUARD_KP_INSTANCE_ID)")
	}
	k, err := p.d.Keys.Key(ctx, crn)
	switch {
	case errors.Is(err, ErrNotFound):
		return fail("key "+crn+" does not exist", "check key_crn in the fleet policy; a deleted key makes every backup it protects unrestorable")
	case err != nil && refused(err):
		return fail("reading key "+crn+" was refused: "+err.Error(), "give this identity Reader on the key (the module grants it per key of the fleet policy: terraform apply after adding a key)")
	case err != nil:
		return fail("cannot read key "+crn+": "+err.Error(), "check KEYGUARD_KP_URL (the key's region) and KEYGUARD_KP_INSTANCE_ID")
	case !k.State.Usable():
		return fail("key is "+string(k.State)+": backups under it are blocked", "enable or restore the key in Key Protect, or move its databases to an active key")
	}
	versions, err := p.d.Keys.Versions(ctx, crn)
	if err != nil {
		return fail("cannot list the key's versions: "+err.Error(), "give this identity Reader on the key")
	}
	regs, err := p.d.Keys.Registrations(ctx, crn)
	if err != nil {
		return fail("cannot list the key's registrations: "+err.Error(), "give this identity Reader on the key")
	}
	registered := map[string]bool{}
	for _, r := range regs {
		registered[r.ResourceCRN] = true
	}
	var missing, have []string
	for _, db := range f.ByKey(crn) {
		if !strings.HasPrefix(db.Instance, "crn:") {
			continue // self-managed Db2 does not register with Key Protect
		}
		if registered[db.Instance] {
			have = append(have, db.Name)
		} else {
			missing = append(missing, db.Name+" ("+db.Instance+")")
		}
	}
	if len(missing) > 0 {
		return fail("not registered to the key: "+limit(missing, 5)+"; without a registration keyguard cannot tell when Db2 has re-wrapped after a rotation",
			"a Db2 on Cloud instance registers itself with the key it was created with: check the database's key_crn in the fleet policy, and the Db2 -> Key Protect authorization")
	}
	d := fmt.Sprintf("active, version %s, %s, %s", short(k.Version), plural(len(versions), "version"), plural(len(regs), "registration"))
	if len(have) > 0 {
		d += " (" + strings.Join(have, ", ") + ")"
	}
	return ok(d)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func short(v string) string {
	if len(v) > 8 {
		return v[:8]
	}
	return v
}

// want is an authorization the deployment needs.
type want struct {
	name                                           string
	source, sourceInstance, target, targetInstance string
	roles                                          []string
	why, fix                                       string
}

func (p *run) authorizations(ctx context.Context, f *config.Fleet) []Result {
	if p.d.Authorizations == nil {
		return skip("not looked up: listing IAM authorizations needs an operator's identity (Viewer on IAM Access Management)")
	}
	keys := fleetKeys(f)
	account := ""
	for _, k := range keys {
		if a := strings.TrimPrefix(crnPart(k, 6), "a/"); a != "" {
			account = a
			break
		}
	}
	if account == "" {
		return fail("no account id in the fleet's key CRNs", "name keys by their full CRN in the fleet policy")
	}
	var wants []want
	kmsInstances := map[string]bool{}
	for _, k := range keys {
		kmsInstances[crnPart(k, 7)] = true
	}
	if p.d.Bucket != nil {
		if h, err := p.d.Bucket.Head(ctx); err == nil && h.RootKeyCRN != "" {
			kmsInstances = map[string]bool{crnPart(h.RootKeyCRN, 7): true}
		}
	}
	if cos := crnPart(p.d.COSInstanceCRN, 7); cos != "" {
		for _, inst := range sortedKeys(kmsInstances) {
			wants = append(wants, want{"cos " + short(cos) + " -> kms " + short(inst), "cloud-object-storage", cos, "kms", inst, []string{"Reader"},
				"Object Storage reads the bucket's root key", "ibmcloud iam authorization-policy-create cloud-object-storage kms Reader --source-service-instance-id " + cos + " --target-service-instance-id " + inst})
		}
	}
	seen := map[string]bool{}
	for _, db := range f.Databases {
		if crnPart(db.Instance, 4) != "dashdb-for-transactions" {
			continue
		}
		src, dst := crnPart(db.Instance, 7), crnPart(db.KeyCRN, 7)
		if seen[src+dst] {
			continue
		}
		seen[src+dst] = true
		wants = append(wants, want{"db2 " + db.Name + " -> kms " + short(dst), "dashdb-for-transactions", src, "kms", dst, []string{"Reader"},
			"Db2 on Cloud (" + db.Name + ") reads its root key", "ibmcloud iam authorization-policy-create dashdb-for-transactions kms Reader --source-service-instance-id " + src + " --target-service-instance-id " + dst + " (or create_db2_kms_authorization = true in the module)"})
	}
	if p.d.Jobs != nil && p.d.ENInstanceID != "" && p.d.CEProjectID != "" {
		wants = append(wants, want{"event-notifications -> codeengine", "event-notifications", p.d.ENInstanceID, "codeengine", p.d.CEProjectID, []string{"Viewer", "Writer"},
			"Event Notifications delivers to the Code Engine apps and starts the restore job", "ibmcloud iam authorization-policy-create event-notifications codeengine Viewer,Writer --source-service-instance-id " + p.d.ENInstanceID + " --target-service-instance-id " + p.d.CEProjectID})
	}
	if len(wants) == 0 {
		return skip("no service-to-service authorization to look for (no COS instance CRN, no Db2 on Cloud database)")
	}
	have, err := p.d.Authorizations.Authorizations(ctx, account)
	if err != nil {
		if refused(err) {
			return fail("listing the account's authorizations was refused: "+err.Error(), "run the preflight with an identity that may view IAM policies (Viewer on IAM Access Management)")
		}
		return fail("cannot list the account's authorizations: "+err.Error(), "check KEYGUARD_IAM_URL and the network")
	}
	var out []Result
	for _, w := range wants {
		name := w.name
		if a, found := match(have, w); found {
			out = append(out, Result{Check: name, Status: OK, Detail: fmt.Sprintf("%s (policy %s, %s)", w.why, a.ID, strings.Join(w.roles, ", "))})
			continue
		}
		out = append(out, Result{Check: name, Status: Fail,
			Detail: fmt.Sprintf("no authorization grants %s on %s %s to %s %s: %s", strings.Join(w.roles, ", "), w.target, w.targetInstance, w.source, w.sourceInstance, lower(w.why)+" through it"),
			Fix:    w.fix})
	}
	return out
}

func lower(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// match finds an authorization covering w: same services, the same instances or the whole
// service, and every role w needs.
func match(have []Authorization, w want) (Authorization, bool) {
	for _, a := range have {
		if a.Source != w.source || a.Target != w.target {
			continue
		}
		if a.SourceInstance != "" && a.SourceInstance != w.sourceInstance || a.TargetInstance != "" && a.TargetInstance != w.targetInstance {
			continue
		}
		all := true
		for _, r := range w.roles {
			if !hasRole(a.Roles, r) {
				all = false
			}
		}
		if all {
			return a, true
		}
	}
	return Authorization{}, false
}

// hasRole matches a role by display name or by the last field of its CRN.
func hasRole(roles []string, name string) bool {
	for _, r := range roles {
		if strings.EqualFold(r, name) || strings.HasSuffix(r, ":"+name) {
			return true
		}
	}
	return false
}

// probe returns the preflight probe event of the run.
func (p *run) probe() events.Preflight {
	by := p.d.RequestedBy
	if by == "" {
		by = "keyguard preflight"
	}
	return events.Preflight{RunID: p.o.RunID, RequestedBy: by, Mode: events.PreflightProbe}
}
