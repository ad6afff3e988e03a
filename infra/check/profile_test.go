package check

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// infraDir is infra/, found from this file so that tests run from any directory.
func infraDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Dir(filepath.Dir(file))
}

// repoPath is a path of the repository, from its root.
func repoPath(rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", filepath.FromSlash(rel))
}

func moduleDir(t testing.TB) string  { return filepath.Join(infraDir(t), "modules", "keyguard") }
func exampleDir(t testing.TB) string { return filepath.Join(infraDir(t), "examples", "basic") }

const (
	testAccount = "0123456789abcdef0123456789abcdef"
	testKeyCRN  = "crn:v1:bluemix:public:kms:us-south:a/" + testAccount + ":5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001"
	testLogsCRN = "crn:v1:bluemix:public:logs:us-south:a/" + testAccount + ":9a8b7c6d-0000-4000-8000-000000000001::"
	testDb2CRN1 = "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/" + testAccount + ":7a1b2c3d-0000-4000-8000-000000000001::"
	testDb2CRN2 = "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/" + testAccount + ":7a1b2c3d-0000-4000-8000-000000000002::"
)

// profile is a set of module inputs the checks evaluate the module with.
type profile struct {
	name   string
	inputs map[string]cty.Value
}

// minimal sets only the required variables: the deployment a first-time user gets.
func minimal() profile {
	images := map[string]cty.Value{}
	for _, fn := range []string{"scheduler", "rotation", "completion", "runner", "restore"} {
		images[fn] = cty.StringVal("icr.io/keyguard/" + fn + "@sha256:0000000000000000000000000000000000000000000000000000000000000000")
	}
	return profile{name: "minimal", inputs: map[string]cty.Value{
		"region":            cty.StringVal("us-south"),
		"resource_group_id": cty.StringVal("0123456789abcdef0123456789abcdef"),
		"images":            cty.MapVal(images),
		"auth_token":        cty.StringVal("0123456789abcdef0123456789abcdef0123456789abcdef"),
		"bucket_name":       cty.StringVal("keyguard-test-bucket"),
		"fleet_file":        cty.StringVal(repoPath("shared/config/fleet.example.yaml")),
		"alert_email":       cty.ObjectVal(map[string]cty.Value{"recipients": cty.ListVal([]cty.Value{cty.StringVal("oncall@example.com")})}),
	}}
}

// full turns every option on: API key and HMAC instead of the trusted profile's IAM token,
// a deployment in us-east with an existing key in us-south (which the us cross-region bucket
// needs), managed rotation, Db2 instances, Cloud Logs, an archive under Object Lock, a private registry, a key
// prefix.
func full() profile {
	p := minimal()
	p.name = "full"
	set := map[string]cty.Value{
		"region":                       cty.StringVal("us-east"),
		"api_key":                      cty.StringVal("an-api-key"),
		"cos_hmac":                     cty.ObjectVal(map[string]cty.Value{"access_key_id": cty.StringVal("hmac-id")}),
		"cos_hmac_secret":              cty.StringVal("hmac-secret"),
		"existing_kms_key_crn":         cty.StringVal(testKeyCRN),
		"managed_rotation":             cty.True,
		"db2_instance_crns":            cty.ListVal([]cty.Value{cty.StringVal(testDb2CRN1), cty.StringVal(testDb2CRN2)}),
		"cloud_logs_instance_crn":      cty.StringVal(testLogsCRN),
		"archive_lock_days":            cty.NumberIntVal(30),
		"archive_expire_days":          cty.NumberIntVal(400),
		"bucket_cross_region_location": cty.StringVal("us"),
		"registry":                     cty.ObjectVal(map[string]cty.Value{"server": cty.StringVal("icr.io"), "username": cty.StringVal("iamapikey")}),
		"registry_password":            cty.StringVal("pw"),
		"cos_prefix":                   cty.StringVal("keyguard"),
		"fleet_file":                   cty.StringVal(repoPath("infra/check/testdata/fleet-managed.yaml")),
		"collect_failed_events":        cty.False,
		"db2saas_url":                  cty.StringVal("https://eu-de.db2.saas.ibm.com/dbapi/v4"),
		"alert_email": cty.ObjectVal(map[string]cty.Value{
			"recipients": cty.ListVal([]cty.Value{cty.StringVal("dba@example.com"), cty.StringVal("oncall@example.com")}),
			"severities": cty.ListVal([]cty.Value{cty.StringVal("critical"), cty.StringVal("warning"), cty.StringVal("info")}),
		}),
		"alert_slack":                 cty.ObjectVal(map[string]cty.Value{}),
		"alert_slack_webhook_url":     cty.StringVal("https://hooks.slack.com/services/T000/B000/XXXX"),
		"alert_webhook":               cty.ObjectVal(map[string]cty.Value{"url": cty.StringVal("https://alerts.example.com/keyguard")}),
		"alert_webhook_authorization": cty.StringVal("Bearer abc"),
		"alert_pagerduty":             cty.ObjectVal(map[string]cty.Value{}),
		"alert_pagerduty_routing_key": cty.StringVal("0123456789abcdef0123456789abcdef"),
	}
	for k, v := range set {
		p.inputs[k] = v
	}
	return p
}

// existingInstance creates a key in an existing Key Protect instance and keeps the Db2
// authorizations out (they exist already).
func existingInstance() profile {
	p := minimal()
	p.name = "existing-instance"
	p.inputs["existing_kms_instance_guid"] = cty.StringVal("5f1e2d3c-0000-4000-8000-00000000cccc")
	p.inputs["db2_instance_crns"] = cty.ListVal([]cty.Value{cty.StringVal(testDb2CRN1)})
	p.inputs["create_db2_kms_authorization"] = cty.False
	// Slack instead of email.
	delete(p.inputs, "alert_email")
	p.inputs["alert_slack"] = cty.ObjectVal(map[string]cty.Value{"severities": cty.ListVal([]cty.Value{cty.StringVal("critical")})})
	p.inputs["alert_slack_webhook_url"] = cty.StringVal("https://hooks.slack.com/services/T000/B000/XXXX")
	return p
}

func profiles() []profile { return []profile{minimal(), full(), existingInstance()} }

// with returns a copy of p with one input changed.
func (p profile) with(name string, v cty.Value) profile {
	in := make(map[string]cty.Value, len(p.inputs)+1)
	for k, x := range p.inputs {
		in[k] = x
	}
	in[name] = v
	return profile{name: p.name + "+" + name, inputs: in}
}

func evaluate(t testing.TB, m *Module, p profile) *Eval {
	t.Helper()
	e, err := Evaluate(m, p.inputs)
	if err != nil {
		t.Fatalf("evaluate %s with profile %s: %v", m.Dir, p.name, err)
	}
	return e
}

func loadModule(t testing.TB) *Module {
	t.Helper()
	m, err := Load(moduleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// baselines caches the evaluation of the unmodified module per profile: checks only read it.
var baselines = map[string]*Eval{}

func baseline(t testing.TB, p profile) *Eval {
	t.Helper()
	if e, ok := baselines[p.name]; ok {
		return e
	}
	e := evaluate(t, loadModule(t), p)
	baselines[p.name] = e
	return e
}
