package check

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/zclconf/go-cty/cty"
)

// Resource types the checks look at.
const (
	typeApp          = "ibm_code_engine_app"
	typeJob          = "ibm_code_engine_job"
	typeProject      = "ibm_code_engine_project"
	typeSecret       = "ibm_code_engine_secret"
	typeTopic        = "ibm_en_topic"
	typeSource       = "ibm_en_source"
	typeSources      = "ibm_en_sources"
	typeDestinationC = "ibm_en_destination_ce"
	typeSubscription = "ibm_en_subscription_ce"
	typeBucket       = "ibm_cos_bucket"
	typeObject       = "ibm_cos_bucket_object"
)

// All runs every check of a deployment module and returns the problems found, sorted.
func All(e *Eval) []string {
	var p []string
	p = append(p, Functions(e)...)
	p = append(p, Env(e)...)
	p = append(p, Routes(e)...)
	p = append(p, Alerts(e)...)
	p = append(p, IAM(e)...)
	p = append(p, Access(e)...)
	p = append(p, Buckets(e)...)
	p = append(p, Fleet(e)...)
	p = append(p, Archive(e)...)
	p = append(p, Schema(e)...)
	p = append(p, Waits(e)...)
	p = append(p, Preconditions(e)...)
	sort.Strings(p)
	return p
}

// functionName is the function an app or job instance runs: its for_each key, or its name label.
func functionName(i *Instance) string {
	if k := i.KeyString(); k != "" {
		return k
	}
	return i.Resource.Name
}

// byFunction maps function name -> instance for a resource type.
func byFunction(e *Eval, typ string) map[string]*Instance {
	out := map[string]*Instance{}
	for _, i := range e.Resources(typ) {
		out[functionName(i)] = i
	}
	return out
}

// Functions checks that every function of config.Apps is a Code Engine app that never scales to
// zero, and every function of config.Jobs a Code Engine job run as a task with a timeout and a
// retry limit.
func Functions(e *Eval) []string {
	var p []string
	apps, jobs := byFunction(e, typeApp), byFunction(e, typeJob)
	want := map[string]bool{}
	for _, fn := range config.Apps {
		want[fn] = true
		app, ok := apps[fn]
		if !ok {
			p = append(p, fmt.Sprintf("function %s has no %s", fn, typeApp))
			continue
		}
		p = append(p, checkName(app, fn)...)
		p = append(p, requireSet(app, "image_reference")...)
		v, err := app.Value("scale_min_instances")
		switch n, nerr := knownInt(v); {
		case err != nil:
			p = append(p, err.Error())
		case !app.Has("scale_min_instances"):
			p = append(p, fmt.Sprintf("%s: scale_min_instances is not set (Code Engine's default 0 scales to zero and a cold start can lose events)", app.Addr()))
		case nerr != nil:
			p = append(p, fmt.Sprintf("%s: scale_min_instances must be a known number", app.Addr()))
		case n < 1:
			p = append(p, fmt.Sprintf("%s: scale_min_instances is %d, must be at least 1", app.Addr(), n))
		}
	}
	for _, fn := range config.Jobs {
		want[fn] = true
		job, ok := jobs[fn]
		if !ok {
			p = append(p, fmt.Sprintf("function %s has no %s", fn, typeJob))
			continue
		}
		p = append(p, checkName(job, fn)...)
		p = append(p, requireSet(job, "image_reference")...)
		if mode, err := job.Value("run_mode"); err != nil {
			p = append(p, err.Error())
		} else if s, ok := knownString(mode); job.Has("run_mode") && (!ok || s != "task") {
			p = append(p, fmt.Sprintf("%s: run_mode must be task (timeouts and retry limits apply only to tasks)", job.Addr()))
		}
		p = append(p, requireInt(job, "scale_max_execution_time", 1, 86400)...)
		p = append(p, requireInt(job, "scale_retry_limit", 0, 5)...)
	}
	for _, insts := range []map[string]*Instance{apps, jobs} {
		for fn, i := range insts {
			if !want[fn] {
				p = append(p, fmt.Sprintf("%s runs %q, which is not a function in shared/config", i.Addr(), fn))
			}
		}
	}
	return p
}

func checkName(i *Instance, fn string) []string {
	v, err := i.Value("name")
	if err != nil {
		return []string{err.Error()}
	}
	s, ok := knownString(v)
	if !ok {
		return []string{fmt.Sprintf("%s: name must be known", i.Addr())}
	}
	if s != fn && !strings.HasSuffix(s, "-"+fn) {
		return []string{fmt.Sprintf("%s: name %q does not end in %q", i.Addr(), s, fn)}
	}
	return nil
}

func requireSet(n *Instance, attr string) []string {
	v, err := n.Value(attr)
	if err != nil {
		return []string{err.Error()}
	}
	if v.IsNull() {
		return []string{fmt.Sprintf("%s: %s is not set", n.Addr(), attr)}
	}
	return nil
}

func requireInt(n *Instance, attr string, lo, hi int) []string {
	if !n.Has(attr) {
		return []string{fmt.Sprintf("%s: %s is not set", n.Addr(), attr)}
	}
	v, err := n.Value(attr)
	if err != nil {
		return []string{err.Error()}
	}
	i, err := knownInt(v)
	if err != nil || i < lo || i > hi {
		return []string{fmt.Sprintf("%s: %s must be a known number in [%d, %d]", n.Addr(), attr, lo, hi)}
	}
	return nil
}

// envVar is one run_env_variables entry.
type envVar struct {
	Name, Type string
	Value      cty.Value
	Reference  cty.Value
	Key        string
}

func envOf(i *Instance) (map[string]envVar, []string) {
	blocks, err := i.Blocks("run_env_variables")
	if err != nil {
		return nil, []string{err.Error()}
	}
	var p []string
	out := map[string]envVar{}
	for _, b := range blocks {
		name, err := b.Value("name")
		if err != nil {
			p = append(p, err.Error())
			continue
		}
		n, ok := knownString(name)
		if !ok {
			p = append(p, fmt.Sprintf("%s: name must be a known string", b.Where))
			continue
		}
		ev := envVar{Name: n, Type: "literal"}
		if t, _ := b.Value("type"); !t.IsNull() {
			ev.Type, _ = knownString(t)
		}
		ev.Value, _ = b.Value("value")
		ev.Reference, _ = b.Value("reference")
		k, _ := b.Value("key")
		ev.Key, _ = knownString(k)
		if _, dup := out[n]; dup {
			p = append(p, fmt.Sprintf("%s: %s is set twice", i.Addr(), n))
		}
		out[n] = ev
	}
	return out, p
}

// secretEnv are the variables that hold credentials: never literal values, except empty when the
// credential is not used.
var secretEnv = map[string]bool{config.EnvAuthToken: true, config.EnvAPIKey: true, config.EnvCOSHMACSecret: true}

// Env checks that every variable in config.FunctionEnv[fn] is set on the app or job of fn,
// credentials come from a Code Engine secret key that exists, PORT is left to Code Engine, and a
// function that authenticates with the trusted profile gets the compute resource token.
// Functions absent from FunctionEnv are only checked for what they do set.
func Env(e *Eval) []string {
	var p []string
	secrets := map[string]*Instance{}
	for _, s := range e.Resources(typeSecret) {
		secrets[s.Addr()] = s
	}
	for _, typ := range []string{typeApp, typeJob} {
		for _, i := range e.Resources(typ) {
			fn := functionName(i)
			env, probs := envOf(i)
			p = append(p, probs...)
			if typ == typeApp {
				if _, ok := env[config.EnvPort]; ok {
					p = append(p, fmt.Sprintf("%s: sets %s, which Code Engine sets for apps", i.Addr(), config.EnvPort))
				}
			}
			for _, name := range config.FunctionEnv[fn] {
				if name == config.EnvPort && typ == typeApp {
					continue
				}
				if _, ok := env[name]; !ok {
					p = append(p, fmt.Sprintf("%s: %s reads %s, which is not set", i.Addr(), fn, name))
				}
			}
			names := make([]string, 0, len(env))
			for n := range env {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				p = append(p, checkEnvVar(i, env[n], secrets)...)
			}
			if tp, ok := env[config.EnvTrustedProfile]; ok {
				if s, known := knownString(tp.Value); tp.Type != "literal" || !known || s != "" {
					v, err := i.Value("run_compute_resource_token_enabled")
					if b, ok := knownBool(v); err != nil || !ok || !b {
						p = append(p, fmt.Sprintf("%s: uses a trusted profile but run_compute_resource_token_enabled is not true", i.Addr()))
					}
				}
			}
		}
	}
	return p
}

func checkEnvVar(i *Instance, ev envVar, secrets map[string]*Instance) []string {
	where := i.Addr() + ": " + ev.Name
	switch ev.Type {
	case "literal":
		if ev.Value.IsNull() {
			return []string{where + ": literal without a value"}
		}
		if secretEnv[ev.Name] {
			s, ok := knownString(ev.Value)
			if ev.Name == config.EnvAuthToken || !ok || s != "" {
				return []string{where + ": a credential must come from a secret, not a literal"}
			}
		}
	case "secret_key_reference":
		ref, ok := RefOf(ev.Reference)
		if !ok || !strings.HasPrefix(ref.Addr, typeSecret+".") || ref.Attr != "name" {
			return []string{where + ": reference must name an " + typeSecret}
		}
		secret := secrets[ref.Addr]
		if secret == nil {
			return []string{where + ": secret " + ref.Addr + " does not exist"}
		}
		data, err := secret.Value("data")
		if err != nil {
			return []string{err.Error()}
		}
		if ev.Key == "" || !hasKey(data, ev.Key) {
			return []string{fmt.Sprintf("%s: key %q is not in the data of %s", where, ev.Key, ref.Addr)}
		}
	default:
		if secretEnv[ev.Name] {
			return []string{where + ": a credential must be a secret_key_reference"}
		}
	}
	return nil
}

// hasKey reports whether a map or object value has key k.
func hasKey(v cty.Value, k string) bool {
	if v.IsNull() || !v.IsKnown() {
		return false
	}
	ty := v.Type()
	switch {
	case ty.IsObjectType():
		return ty.HasAttribute(k)
	case ty.IsMapType():
		return v.HasIndex(cty.StringVal(k)).True()
	}
	return false
}

// Buckets checks that every bucket is encrypted with a Key Protect (or Hyper Protect) root key.
func Buckets(e *Eval) []string {
	var p []string
	for _, b := range e.Resources(typeBucket) {
		v, err := b.Value("kms_key_crn")
		if err != nil {
			p = append(p, err.Error())
			continue
		}
		if v.IsNull() {
			v, _ = b.Value("key_protect")
		}
		if v.IsNull() {
			p = append(p, fmt.Sprintf("%s: no kms_key_crn: every bucket must be encrypted with the root key", b.Addr()))
			continue
		}
		if s, ok := knownString(v); ok {
			if _, _, isRef := ParseRef(s); !isRef && !kmsKeyCRN.MatchString(s) {
				p = append(p, fmt.Sprintf("%s: kms_key_crn %q is not a root key CRN", b.Addr(), s))
			}
		}
	}
	return p
}

var kmsKeyCRN = regexp.MustCompile(`^crn:v1:[^:]+:[^:]+:(kms|hs-crypto):[^:]+:a/[^:]+:[^:]+:key:[^:]+$`)

// Fleet checks that the fleet policy is uploaded, from a file, into the bucket the functions
// use, at the key they read (KEYGUARD_COS_PREFIX + KEYGUARD_FLEET_KEY), and that this bucket is
// versioned.
func Fleet(e *Eval) []string {
	var p []string
	buckets, fleetKeys := map[string]bool{}, map[string]bool{}
	for _, typ := range []string{typeApp, typeJob} {
		for _, i := range e.Resources(typ) {
			env, _ := envOf(i)
			b, ok := env[config.EnvCOSBucket]
			if !ok {
				continue
			}
			ref, isRef := RefOf(b.Value)
			if !isRef || !strings.HasPrefix(ref.Addr, typeBucket+".") || ref.Attr != "bucket_name" {
				p = append(p, fmt.Sprintf("%s: %s must be the bucket_name of an %s", i.Addr(), config.EnvCOSBucket, typeBucket))
				continue
			}
			buckets[ref.Addr] = true
			prefix, _ := knownString(env[config.EnvCOSPrefix].Value)
			if prefix != "" && !strings.HasSuffix(prefix, "/") {
				prefix += "/"
			}
			key := "config/fleet.yaml"
			if fk, ok := env[config.EnvFleetKey]; ok {
				key, _ = knownString(fk.Value)
			}
			fleetKeys[prefix+key] = true
		}
	}
	if len(buckets) != 1 {
		return append(p, fmt.Sprintf("functions must share one bucket, found %d", len(buckets)))
	}
	var bucket string
	for b := range buckets {
		bucket = b
	}
	if inst := e.Lookup(bucket); inst == nil {
		p = append(p, "bucket "+bucket+" does not exist")
	} else if p2 := versioned(inst); p2 != "" {
		p = append(p, p2)
	}
	found := false
	for _, o := range e.Resources(typeObject) {
		crn, _ := o.Value("bucket_crn")
		ref, ok := RefOf(crn)
		if !ok || ref.Addr != bucket {
			continue
		}
		kv, _ := o.Value("key")
		key, ok := knownString(kv)
		if !ok || !fleetKeys[key] {
			continue
		}
		if len(fleetKeys) != 1 {
			p = append(p, "functions read the fleet policy from different keys")
		}
		if cf, _ := o.Value("content_file"); cf.IsNull() {
			p = append(p, o.Addr()+": the fleet policy must be uploaded from a file (content_file)")
		}
		found = true
	}
	if !found {
		keys := make([]string, 0, len(fleetKeys))
		for k := range fleetKeys {
			keys = append(keys, k)
		}
		p = append(p, fmt.Sprintf("no %s uploads the fleet policy to %s at %v", typeObject, bucket, keys))
	}
	return p
}

func versioned(b *Instance) string {
	blocks, err := b.Blocks("object_versioning")
	if err != nil {
		return err.Error()
	}
	for _, v := range blocks {
		en, _ := v.Value("enable")
		if on, ok := knownBool(en); ok && on {
			return ""
		}
	}
	return b.Addr() + ": the keyguard bucket must have object_versioning enabled"
}

// Preconditions evaluates every lifecycle precondition of every instance: one that is known to
// be false is a plan that Terraform would stop with its error message.
func Preconditions(e *Eval) []string {
	var p []string
	for _, i := range e.Instances {
		lcs, err := i.Blocks("lifecycle")
		if err != nil {
			p = append(p, err.Error())
			continue
		}
		for _, lc := range lcs {
			pcs, err := lc.Blocks("precondition")
			if err != nil {
				p = append(p, err.Error())
				continue
			}
			for _, pc := range pcs {
				ok, err := pc.Value("condition")
				if err != nil {
					p = append(p, err.Error())
					continue
				}
				if b, known := knownBool(ok); known && !b {
					msg, _ := knownString(mustValue(pc, "error_message"))
					p = append(p, fmt.Sprintf("%s: precondition fails: %s", i.Addr(), msg))
				}
			}
		}
	}
	sort.Strings(p)
	return p
}
