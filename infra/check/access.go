package check

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/shared/config"
)

// Capability is one kind of access a function's code needs from IBM Cloud.
type Capability string

const (
	CapObjects    Capability = "objects"     // read, list and write the objects of the bucket
	CapDelete     Capability = "delete"      // delete objects (retention of images and archived logs)
	CapPublish    Capability = "publish"     // send notifications to the Event Notifications instance
	CapKeys       Capability = "keys"        // read the fleet's root keys, wrap and unwrap with them
	CapRotate     Capability = "rotate"      // rotate the root keys keyguard rotates itself (managed_rotation)
	CapJobRuns    Capability = "job-runs"    // start, read and delete Code Engine job runs
	CapDb2Backups Capability = "db2-backups" // start and list Db2 on Cloud backups
)

// FunctionAccess is what each function's code calls, and so all its trusted profile may hold.
// TestAccessFollowsCode derives it from functions/<name>/main.go and the function's handler
// package: the clients main builds (runtime.Run's object store and sender, codeengine.New,
// db2saas.New, Config.Keys) and whether the handler deletes.
var FunctionAccess = map[string][]Capability{
	config.FnScheduler:  {CapObjects, CapPublish, CapKeys, CapRotate, CapJobRuns, CapDb2Backups},
	config.FnRotation:   {CapObjects, CapPublish},
	config.FnCompletion: {CapObjects, CapDelete, CapPublish},
	config.FnRunner:     {CapObjects, CapDelete, CapPublish, CapKeys},
	config.FnRestore:    {CapObjects, CapPublish, CapKeys},
}

// s3Actions maps each S3 operation keyguard's object store and uploader call to the Object
// Storage IAM action it needs (ibm-cloud-docs/cloud-object-storage iam.md, "Identity and
// Access Management actions"). TestObjectActionsFollowCode derives the operations from
// shared/objstore and shared/upload.
var s3Actions = map[string]string{
	"HeadBucket":              "cloud-object-storage.bucket.head",
	"ListObjectsV2":           "cloud-object-storage.bucket.get",
	"HeadObject":              "cloud-object-storage.object.head",
	"GetObject":               "cloud-object-storage.object.get",
	"PutObject":               "cloud-object-storage.object.put",
	"CreateMultipartUpload":   "cloud-object-storage.object.post_initiate_upload",
	"UploadPart":              "cloud-object-storage.object.put_part",
	"CompleteMultipartUpload": "cloud-object-storage.object.post_complete_upload",
	"AbortMultipartUpload":    "cloud-object-storage.object.delete_upload",
	"ListParts":               "cloud-object-storage.object.get_uploads",
	"DeleteObject":            "cloud-object-storage.object.delete",
	"DeleteObjects":           "cloud-object-storage.object.post_multi_delete",
}

// deleteOps need CapDelete; every other operation is CapObjects.
var deleteOps = map[string]bool{"DeleteObject": true, "DeleteObjects": true}

// objectActions returns the IAM actions of CapObjects and of CapDelete, sorted.
func objectActions() (objects, deletes []string) {
	for op, a := range s3Actions {
		if deleteOps[op] {
			deletes = append(deletes, a)
		} else {
			objects = append(objects, a)
		}
	}
	sort.Strings(objects)
	sort.Strings(deletes)
	return objects, deletes
}

// Access checks least privilege per function: each function (config.Apps, config.Jobs) has its
// own trusted profile, linked to its own app or job and named in its KEYGUARD_TRUSTED_PROFILE;
// the custom Object Storage roles allow exactly the operations the code performs; and each
// profile holds exactly the grants FunctionAccess gives its function: objects of the bucket
// the functions use (deleting only with CapDelete), publishing to the instance they send to,
// each root key of the fleet policy (Writer only on the keys it rotates itself), job runs in
// the project the scheduler starts them in, each Db2 on Cloud instance. A grant beyond that, or
// one missing, is a problem.
func Access(e *Eval) []string {
	profiles, p := functionProfiles(e)
	roleKinds, probs := customRoles(e)
	p = append(p, probs...)
	p = append(p, functionGrants(e, profiles, roleKinds)...)
	sort.Strings(p)
	return p
}

// functionProfiles maps each profile instance address to its function and checks profiles,
// links and the environment.
func functionProfiles(e *Eval) (map[string]string, []string) {
	var p []string
	fnOf := map[string]string{}
	byFn := map[string]*Instance{}
	for _, i := range e.Resources(typeProfile) {
		fn := functionName(i)
		if _, ok := FunctionAccess[fn]; !ok {
			p = append(p, fmt.Sprintf("%s is not the profile of a function in shared/config", i.Addr()))
			continue
		}
		fnOf[i.Addr()], byFn[fn] = fn, i
	}
	for _, fn := range append(append([]string{}, config.Apps...), config.Jobs...) {
		if byFn[fn] == nil {
			p = append(p, fmt.Sprintf("function %s has no trusted profile of its own", fn))
		}
	}
	linked := map[string]string{} // app or job address -> profile address
	for _, l := range e.Resources(typeProfileLink) {
		ref, ok := RefOf(mustValue(l.Node, "profile_id"))
		if !ok || ref.Attr != "id" || fnOf[ref.Addr] == "" {
			p = append(p, l.Addr()+": profile_id must be the id of a function's trusted profile")
			continue
		}
		if !isString(mustValue(l.Node, "cr_type"), "CE") {
			p = append(p, l.Addr()+`: cr_type must be "CE"`)
		}
		links, err := l.Blocks("link")
		if err != nil || len(links) != 1 {
			p = append(p, l.Addr()+": needs one link block")
			continue
		}
		ct, _ := knownString(mustValue(links[0], "component_type"))
		cn, ok := RefOf(mustValue(links[0], "component_name"))
		var target *Instance
		if ok && cn.Attr == "name" {
			target = e.Lookup(cn.Addr)
		}
		switch {
		case target == nil || target.Resource.Type != typeApp && target.Resource.Type != typeJob:
			p = append(p, l.Addr()+": component_name must be the name of an app or job")
			continue
		case target.Resource.Type == typeApp && ct != "application", target.Resource.Type == typeJob && ct != "job":
			p = append(p, fmt.Sprintf("%s: component_type %q does not match %s", l.Addr(), ct, target.Addr()))
		}
		if fn := functionName(target); fn != fnOf[ref.Addr] {
			p = append(p, fmt.Sprintf("%s links %s (function %s) to the profile of %s", l.Addr(), target.Addr(), fn, fnOf[ref.Addr]))
		}
		if r, ok := RefOf(mustValue(links[0], "crn")); !ok || r.Attr != "crn" || !strings.HasPrefix(r.Addr, typeProject+".") {
			p = append(p, l.Addr()+": link crn must be the Code Engine project's crn")
		}
		linked[target.Addr()] = ref.Addr
	}
	for _, typ := range []string{typeApp, typeJob} {
		for _, i := range e.Resources(typ) {
			fn := functionName(i)
			want := byFn[fn]
			if want == nil {
				continue
			}
			if linked[i.Addr()] != want.Addr() {
				p = append(p, fmt.Sprintf("%s is not linked to the trusted profile of %s", i.Addr(), fn))
			}
			env, _ := envOf(i)
			tp, ok := env[config.EnvTrustedProfile]
			if !ok {
				continue
			}
			if s, known := knownString(tp.Value); known && s == "" {
				continue // authenticates with an API key
			}
			if r, ok := RefOf(tp.Value); !ok || r.Addr != want.Addr() || r.Attr != "name" {
				p = append(p, fmt.Sprintf("%s: %s must be the name of %s", i.Addr(), config.EnvTrustedProfile, want.Addr()))
			}
		}
	}
	return fnOf, p
}

// customRoles checks the custom roles and says which is the objects role and which the delete
// role, by the reference a policy uses for its display name.
func customRoles(e *Eval) (map[string]Capability, []string) {
	var p []string
	objects, deletes := objectActions()
	kinds := map[string]Capability{}
	found := map[Capability]int{}
	for _, r := range e.Resources("ibm_iam_custom_role") {
		if !isString(mustValue(r.Node, "service"), "cloud-object-storage") {
			p = append(p, r.Addr()+": keyguard's only custom roles are Object Storage roles")
			continue
		}
		actions, ok := stringList(mustValue(r.Node, "actions"))
		if !ok {
			p = append(p, r.Addr()+": actions must be a known list")
			continue
		}
		for _, a := range actions {
			if !containsString(objects, a) && !containsString(deletes, a) {
				p = append(p, fmt.Sprintf("%s: grants %s, which keyguard's code never calls (and which may weaken the bucket's protection)", r.Addr(), a))
			}
		}
		ref := Ref{Addr: r.Addr(), Attr: "display_name"}.String()
		switch {
		case sameSet(actions, objects):
			kinds[ref] = CapObjects
			found[CapObjects]++
		case sameSet(actions, deletes):
			kinds[ref] = CapDelete
			found[CapDelete]++
		default:
			p = append(p, fmt.Sprintf("%s: actions %v are neither the object operations %v nor deletion %v", r.Addr(), actions, objects, deletes))
		}
	}
	for _, c := range []Capability{CapObjects, CapDelete} {
		if found[c] != 1 {
			p = append(p, fmt.Sprintf("want one custom Object Storage role for %s, found %d", c, found[c]))
		}
	}
	return kinds, p
}

// wantGrant is a grant a function must hold: one service, one scope, these roles.
type wantGrant struct {
	Service, Scope string
	Roles          []string
}

func grantScope(instance, resourceType, resource string) string {
	s := instance
	if resourceType != "" || resource != "" {
		s += " " + resourceType + " " + resource
	}
	return s
}

func functionGrants(e *Eval, fnOf map[string]string, roleKinds map[string]Capability) []string {
	var p []string
	fleet, err := fleetOf(e)
	if err != nil {
		return []string{err.Error()}
	}
	got := map[string][]grant{}
	for _, typ := range accessPolicyTypes {
		for _, i := range e.Resources(typ) {
			gs, _ := accessPolicy(i)
			id, ok := RefOf(mustValue(i.Node, "iam_id"))
			fn := fnOf[id.Addr]
			if !ok || fn == "" {
				p = append(p, i.Addr()+": grants access to an identity that is not a function's trusted profile")
				continue
			}
			got[fn] = append(got[fn], gs...)
		}
	}
	fns := make([]string, 0, len(FunctionAccess))
	for fn := range FunctionAccess {
		fns = append(fns, fn)
	}
	sort.Strings(fns)
	for _, fn := range fns {
		want := expectedGrants(e, fn, fleet)
		matched := make([]bool, len(want))
		for _, g := range got[fn] {
			inst, _ := knownString(g.Instance)
			scope := grantScope(inst, g.ResourceType, g.Resource)
			roles := make([]string, len(g.Roles))
			for i, r := range g.Roles {
				roles[i] = r
				if c, ok := roleKinds[r]; ok {
					roles[i] = "custom:" + string(c)
				}
			}
			hit := -1
			for k, w := range want {
				if w.Service == g.Service && w.Scope == scope {
					hit = k
				}
			}
			switch {
			case hit < 0:
				p = append(p, fmt.Sprintf("%s: %s is granted %v on %s (%s), which its code does not use", g.Addr, fn, roles, g.Service, scope))
			case !sameSet(roles, want[hit].Roles):
				p = append(p, fmt.Sprintf("%s: %s is granted %v on %s (%s), want %v", g.Addr, fn, roles, g.Service, scope, want[hit].Roles))
				matched[hit] = true
			case matched[hit]:
				p = append(p, fmt.Sprintf("%s: %s is granted %s (%s) twice", g.Addr, fn, g.Service, scope))
			default:
				matched[hit] = true
			}
		}
		for k, w := range want {
			if !matched[k] {
				p = append(p, fmt.Sprintf("%s needs %v on %s (%s), which its trusted profile does not hold", fn, w.Roles, w.Service, w.Scope))
			}
		}
	}
	return p
}

// expectedGrants turns a function's capabilities into the grants it must hold, scoped to what
// its environment names (bucket, Event Notifications instance, Code Engine project) and to the
// fleet policy's keys and the Db2 instances of the module's inputs.
func expectedGrants(e *Eval, fn string, fleet *config.Fleet) []wantGrant {
	var env map[string]envVar
	for _, typ := range []string{typeApp, typeJob} {
		for _, i := range e.Resources(typ) {
			if functionName(i) == fn {
				env, _ = envOf(i)
			}
		}
	}
	envString := func(name string) string { s, _ := knownString(env[name].Value); return s }
	// The bucket: its instance and name as the policies name them, from the bucket resource
	// the functions' KEYGUARD_COS_BUCKET refers to.
	bucket, cosInstance := envString(config.EnvCOSBucket), ""
	if ref, ok := RefOf(env[config.EnvCOSBucket].Value); ok {
		if b := e.Lookup(ref.Addr); b != nil {
			if ri, ok := RefOf(mustValue(b.Node, "resource_instance_id")); ok {
				cosInstance = Ref{Addr: ri.Addr, Attr: "guid"}.String()
			}
		}
	}
	has := map[Capability]bool{}
	for _, c := range FunctionAccess[fn] {
		has[c] = true
	}
	var want []wantGrant
	if has[CapObjects] {
		roles := []string{"custom:" + string(CapObjects)}
		if has[CapDelete] {
			roles = append(roles, "custom:"+string(CapDelete))
		}
		want = append(want, wantGrant{"cloud-object-storage", grantScope(cosInstance, "bucket", bucket), roles})
	}
	if has[CapPublish] {
		want = append(want, wantGrant{"event-notifications", envString(config.EnvENInstanceID), []string{RoleENPublisher}})
	}
	if has[CapKeys] {
		managed := map[string]bool{}
		for _, k := range fleet.Keys {
			if k.ManagedRotation.Every > time.Duration(0) {
				managed[k.CRN] = true
			}
		}
		for _, crn := range fleetKeys(fleet) {
			parts := strings.Split(crn, ":")
			role := RoleReader
			if managed[crn] && has[CapRotate] {
				role = RoleWriter
			}
			want = append(want, wantGrant{"kms", grantScope(parts[7], "key", parts[9]), []string{role}})
		}
	}
	if has[CapJobRuns] {
		want = append(want, wantGrant{"codeengine", envString(config.EnvCEProjectID), []string{RoleWriter}})
	}
	if has[CapDb2Backups] {
		if crns, ok := stringList(e.Var("db2_instance_crns")); ok {
			for _, crn := range crns {
				want = append(want, wantGrant{"dashdb-for-transactions", strings.Split(crn, ":")[7], []string{RoleOperator}})
			}
		}
	}
	return want
}

// fleetKeys lists the root keys of a fleet policy: its databases' keys and its keys: entries.
func fleetKeys(f *config.Fleet) []string {
	set := map[string]bool{}
	for _, db := range f.Databases {
		for _, k := range []string{db.KeyCRN, db.KeystoreKeyCRN} {
			if k != "" {
				set[k] = true
			}
		}
	}
	for _, k := range f.Keys {
		set[k.CRN] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fleetOf reads and validates the fleet policy the module uploads (var.fleet_file).
func fleetOf(e *Eval) (*config.Fleet, error) {
	path, ok := knownString(e.Var("fleet_file"))
	if !ok {
		return nil, fmt.Errorf("fleet_file must be known to check key access")
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(e.Module.Dir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fleet policy: %w", err)
	}
	f, err := config.Load(b)
	if err != nil {
		return nil, fmt.Errorf("fleet policy %s: %w", path, err)
	}
	return f, nil
}
