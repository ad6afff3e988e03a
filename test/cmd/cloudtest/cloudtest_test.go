package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// example makes a directory that looks like the basic example.
func example(t *testing.T) (dir, tfvars string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte("# example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tfvars = filepath.Join(dir, "test.tfvars")
	if err := os.WriteFile(tfvars, []byte(`region = "us-south"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, tfvars
}

func TestParseSaysEveryProblem(t *testing.T) {
	_, err := parse([]string{"-example", t.TempDir(), "-terraform", "/no/terraform", "stray"}, env(nil))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"-tfvars is required", "-db is required", "no main.tf", "/no/terraform", "IBMCLOUD_API_KEY", `unexpected argument "stray"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	dir, tfvars := example(t)
	if _, err := parse([]string{"-example", dir, "-tfvars", tfvars, "-db", "ledger", "-dry-run"}, env(nil)); err != nil {
		t.Fatalf("a dry run needs neither terraform nor a key: %v", err)
	}
}

func TestDryRunPrintsTheStepsAndNoSecret(t *testing.T) {
	dir, tfvars := example(t)
	o, err := parse([]string{"-example", dir, "-tfvars", tfvars, "-db", "ledger", "-dry-run"}, env(map[string]string{"IBMCLOUD_API_KEY": "very-secret-key"}))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), o, &out, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	last := -1
	for _, want := range []string{"init -input=false", "apply -input=false -auto-approve -var-file=" + tfvars, "output -json", "keyguard preflight",
		"keyguard backup create ledger -type full", "-wait", "keyguard backup list ledger -json", "keyguard plan-restore ledger",
		"empty buckets", "destroy -input=false -auto-approve"} {
		i := strings.Index(s, want)
		if i < 0 || i < last {
			t.Fatalf("%q missing or out of order:\n%s", want, s)
		}
		last = i
	}
	if strings.Contains(s, "very-secret-key") {
		t.Fatalf("the dry run printed the API key:\n%s", s)
	}
	if !strings.Contains(s, "[always, even after a failure]") {
		t.Fatalf("the cleanup steps are not marked:\n%s", s)
	}
}

// fakes writes terraform and keyguard stand-ins that log each call; keyguard preflight exits
// with preflightExit.
func fakes(t *testing.T, preflightExit string) (terraform, keyguard, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls.log")
	terraform = filepath.Join(dir, "terraform")
	keyguard = filepath.Join(dir, "keyguard")
	tf := `#!/bin/sh
echo "terraform $* key=${TF_VAR_ibmcloud_api_key:+set}" >> "` + log + `"
case "$*" in *"output -json"*) echo '{"operator_env":{"value":{"KEYGUARD_COS_BUCKET":"kg-test"}},"bucket_name":{"value":null}}';; esac
exit 0
`
	kg := `#!/bin/sh
echo "keyguard $* bucket=$KEYGUARD_COS_BUCKET key=${KEYGUARD_API_KEY:+set}" >> "` + log + `"
case "$1" in
preflight) exit ` + preflightExit + `;;
backup) [ "$2" = list ] && echo '[{"timestamp":"20261201000000"}]';;
esac
exit 0
`
	for p, body := range map[string]string{terraform: tf, keyguard: kg} {
		if err := os.WriteFile(p, []byte(body), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return terraform, keyguard, log
}

func calls(t *testing.T, log string) []string {
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestRunsEveryStepInOrder(t *testing.T) {
	dir, tfvars := example(t)
	tf, kg, log := fakes(t, "0")
	o, err := parse([]string{"-example", dir, "-tfvars", tfvars, "-db", "ledger", "-terraform", tf, "-keyguard", kg}, env(map[string]string{"IBMCLOUD_API_KEY": "k"}))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), o, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := calls(t, log)
	want := []string{"init", "apply", "output -json", "keyguard preflight bucket=kg-test key=set", "backup create ledger", "backup list ledger",
		"plan-restore ledger", "state rm module.keyguard.ibm_cos_bucket_object.fleet", "destroy"}
	if len(got) != len(want) {
		t.Fatalf("calls:\n%s", strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("call %d is %q, want %q", i+1, got[i], w)
		}
	}
	if !strings.Contains(got[1], "key=set") || !strings.Contains(out.String(), "acceptance run passed") {
		t.Fatalf("apply without the API key, or no verdict:\n%s\n%s", strings.Join(got, "\n"), out.String())
	}
}

// A failed preflight stops the run before the backup, but the deployment is still destroyed.
func TestDestroysAfterAFailure(t *testing.T) {
	dir, tfvars := example(t)
	tf, kg, log := fakes(t, "1")
	o, err := parse([]string{"-example", dir, "-tfvars", tfvars, "-db", "ledger", "-terraform", tf, "-keyguard", kg, "-settle", "1ms"}, env(map[string]string{"IBMCLOUD_API_KEY": "k"}))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(context.Background(), o, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "preflight") {
		t.Fatalf("want a preflight failure, got %v", err)
	}
	got := strings.Join(calls(t, log), "\n")
	if strings.Contains(got, "backup create") || !strings.Contains(got, "destroy") {
		t.Fatalf("calls after a failed preflight:\n%s", got)
	}
	o.keep = true
	_ = os.Remove(log)
	_ = run(context.Background(), o, &out, &out)
	if strings.Contains(strings.Join(calls(t, log), "\n"), "destroy") {
		t.Fatal("-keep destroyed the deployment")
	}
}
