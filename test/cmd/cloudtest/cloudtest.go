package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// options is the command line.
type options struct {
	tfvars, db, example, terraform, keyguard, work string
	keep, dryRun                                   bool
	settle, backupTimeout                          time.Duration
	apiKey, authToken                              string
}

// parse reads the command line and the environment and says every problem at once.
func parse(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("cloudtest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.tfvars, "tfvars", "", "tfvars file for infra/examples/basic (required)")
	fs.StringVar(&o.db, "db", "", "the Db2 on Cloud database of the fleet policy to back up (required)")
	fs.StringVar(&o.example, "example", "infra/examples/basic", "Terraform root to apply")
	fs.StringVar(&o.terraform, "terraform", "bin/terraform", "terraform binary")
	fs.StringVar(&o.keyguard, "keyguard", "", "keyguard binary (built from ./cmd/keyguard when empty)")
	fs.StringVar(&o.work, "work", "", "working directory (a temporary one when empty)")
	fs.BoolVar(&o.keep, "keep", false, "leave the deployment up (no emptying, no destroy)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the steps and run nothing")
	fs.DurationVar(&o.settle, "settle", 12*time.Minute, "how long keyguard preflight may take to pass (the first tick comes within the tick interval)")
	fs.DurationVar(&o.backupTimeout, "backup-timeout", 2*time.Hour, "how long the backup may take")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var p []string
	if fs.NArg() > 0 {
		p = append(p, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if o.tfvars == "" {
		p = append(p, "-tfvars is required (a tfvars file for "+o.example+")")
	} else if _, err := os.Stat(o.tfvars); err != nil {
		p = append(p, fmt.Sprintf("-tfvars %s: %v", o.tfvars, err))
	}
	if o.db == "" {
		p = append(p, "-db is required (a Db2 on Cloud database of the fleet policy the tfvars upload)")
	}
	if _, err := os.Stat(filepath.Join(o.example, "main.tf")); err != nil {
		p = append(p, fmt.Sprintf("-example %s: no main.tf", o.example))
	}
	if !o.dryRun {
		if _, err := os.Stat(o.terraform); err != nil {
			p = append(p, fmt.Sprintf("-terraform %s: %v (make tf-fmt builds bin/terraform)", o.terraform, err))
		}
	}
	o.apiKey = getenv("IBMCLOUD_API_KEY")
	if o.apiKey == "" && !o.dryRun {
		p = append(p, "IBMCLOUD_API_KEY is required (an API key that may create the example's resources)")
	}
	o.authToken = getenv("TF_VAR_auth_token")
	if o.authToken == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		o.authToken = hex.EncodeToString(b)
	}
	if o.settle <= 0 || o.backupTimeout <= 0 {
		p = append(p, "-settle and -backup-timeout must be positive")
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	if abs, err := filepath.Abs(o.tfvars); err == nil {
		o.tfvars = abs
	}
	return o, nil
}

// session is a run in progress: what the steps learn as they go.
type session struct {
	o           options
	out, errOut io.Writer
	// env is the operator's environment, from the operator_env output.
	env     map[string]string
	buckets []string
	// bin is the keyguard binary.
	bin string
}

// step is one step of the run.
type step struct {
	name string
	// show is what the step does, for -dry-run and the log.
	show string
	run  func(ctx context.Context, s *session) error
	// cleanup steps run even after a failure.
	cleanup bool
}

// steps is the run, in order.
func steps(o options) []step {
	tf := func(args ...string) []string { return append([]string{o.terraform, "-chdir=" + o.example}, args...) }
	kg := func(args ...string) string { return "keyguard " + strings.Join(args, " ") }
	list := []step{
		{name: "build", show: "go build -o <work>/keyguard ./cmd/keyguard (unless -keyguard)", run: build},
		{name: "init", show: strings.Join(tf("init", "-input=false"), " "), run: func(ctx context.Context, s *session) error {
			return s.terraform(ctx, nil, tf("init", "-input=false")...)
		}},
		{name: "apply", show: strings.Join(tf("apply", "-input=false", "-auto-approve", "-var-file="+o.tfvars), " ") + "  (TF_VAR_ibmcloud_api_key from IBMCLOUD_API_KEY, TF_VAR_auth_token)",
			run: func(ctx context.Context, s *session) error {
				return s.terraform(ctx, nil, tf("apply", "-input=false", "-auto-approve", "-var-file="+o.tfvars)...)
			}},
		{name: "outputs", show: strings.Join(tf("output", "-json"), " ") + " -> operator_env, bucket names", run: outputs(tf("output", "-json"))},
		{name: "preflight", show: kg("preflight") + fmt.Sprintf("  (again every minute until it passes, at most %s)", o.settle), run: preflight},
		{name: "backup", show: kg("backup", "create", o.db, "-type", "full", "-reason", "acceptance run", "-wait", "-timeout", o.backupTimeout.String()), run: backup},
		{name: "catalog", show: kg("backup", "list", o.db, "-json") + "  (the backup is in the catalog)", run: catalog},
		{name: "restore plan", show: kg("plan-restore", o.db), run: func(ctx context.Context, s *session) error {
			return s.keyguard(ctx, nil, "plan-restore", o.db)
		}},
	}
	if !o.keep {
		list = append(list,
			step{name: "empty buckets", show: "delete every object version in the bucket and the failed-events bucket; terraform state rm the fleet object", cleanup: true, run: emptyBuckets(tf)},
			step{name: "destroy", show: strings.Join(tf("destroy", "-input=false", "-auto-approve", "-var-file="+o.tfvars), " "), cleanup: true,
				run: func(ctx context.Context, s *session) error {
					return s.terraform(ctx, nil, tf("destroy", "-input=false", "-auto-approve", "-var-file="+o.tfvars)...)
				}})
	}
	return list
}

// run runs the steps: it stops at the first failure, except that the cleanup steps always run.
func run(ctx context.Context, o options, out, errOut io.Writer) error {
	list := steps(o)
	if o.dryRun {
		fmt.Fprintf(out, "keyguard acceptance run on IBM Cloud (dry run: nothing is run)\n")
		for i, st := range list {
			tag := ""
			if st.cleanup {
				tag = " [always, even after a failure]"
			}
			fmt.Fprintf(out, "%2d. %-13s %s%s\n", i+1, st.name, st.show, tag)
		}
		return nil
	}
	if o.work == "" {
		dir, err := os.MkdirTemp("", "keyguard-cloudtest-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.work = dir
	}
	s := &session{o: o, out: out, errOut: errOut, bin: o.keyguard}
	var failed error
	for _, st := range list {
		if failed != nil && !st.cleanup {
			continue
		}
		ctx := ctx
		if failed != nil || ctx.Err() != nil {
			// Clean up even when interrupted: a left-over deployment costs money.
			ctx = context.WithoutCancel(ctx)
		}
		start := time.Now()
		fmt.Fprintf(out, "==> %s: %s\n", st.name, st.show)
		err := st.run(ctx, s)
		if err != nil {
			fmt.Fprintf(out, "<== %s FAILED after %s: %v\n", st.name, time.Since(start).Round(time.Second), err)
			if failed == nil {
				failed = fmt.Errorf("%s: %w", st.name, err)
			} else {
				failed = errors.Join(failed, fmt.Errorf("%s: %w", st.name, err))
			}
			continue
		}
		fmt.Fprintf(out, "<== %s done in %s\n", st.name, time.Since(start).Round(time.Second))
	}
	if failed != nil {
		return failed
	}
	fmt.Fprintln(out, "acceptance run passed")
	return nil
}

// command runs argv with the session's environment plus extra, streaming its output; stdout is
// also returned when capture is set.
func (s *session) command(ctx context.Context, extra []string, capture bool, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), extra...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = s.out, s.errOut
	if capture {
		cmd.Stdout = &buf
	}
	err := cmd.Run()
	return buf.Bytes(), err
}

func (s *session) terraform(ctx context.Context, capture *[]byte, argv ...string) error {
	env := []string{"TF_IN_AUTOMATION=1", "TF_CLI_CONFIG_FILE=" + os.DevNull, "TF_VAR_ibmcloud_api_key=" + s.o.apiKey, "TF_VAR_auth_token=" + s.o.authToken}
	out, err := s.command(ctx, env, capture != nil, argv...)
	if capture != nil {
		*capture = out
	}
	return err
}

// keyguard runs the operator command against the deployment.
func (s *session) keyguard(ctx context.Context, capture *[]byte, args ...string) error {
	if s.env == nil {
		return errors.New("no operator environment (the outputs step did not run)")
	}
	env := []string{config.EnvAPIKey + "=" + s.o.apiKey}
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	out, err := s.command(ctx, env, capture != nil, append([]string{s.bin}, args...)...)
	if capture != nil {
		*capture = out
	}
	return err
}

func build(ctx context.Context, s *session) error {
	if s.bin != "" {
		return nil
	}
	s.bin = filepath.Join(s.o.work, "keyguard")
	_, err := s.command(ctx, []string{"CGO_ENABLED=0"}, false, "go", "build", "-o", s.bin, "./cmd/keyguard")
	return err
}

// outputs reads operator_env and the bucket names from terraform output.
func outputs(argv []string) func(context.Context, *session) error {
	return func(ctx context.Context, s *session) error {
		var raw []byte
		if err := s.terraform(ctx, &raw, argv...); err != nil {
			return err
		}
		var outs map[string]struct {
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(raw, &outs); err != nil {
			return fmt.Errorf("terraform output: %w", err)
		}
		env := map[string]string{}
		if err := json.Unmarshal(outs["operator_env"].Value, &env); err != nil || len(env) == 0 {
			return fmt.Errorf("no operator_env output (is %s the basic example?): %v", s.o.example, err)
		}
		s.env = env
		s.buckets = nil
		for _, name := range []string{"bucket_name", "failed_events_bucket_name"} {
			var b *string
			if v, ok := outs[name]; ok && json.Unmarshal(v.Value, &b) == nil && b != nil && *b != "" {
				s.buckets = append(s.buckets, *b)
			}
		}
		fmt.Fprintf(s.out, "operator environment: %d variables; buckets %v\n", len(env), s.buckets)
		return nil
	}
}

// preflight runs keyguard preflight until it passes or the settle time is over.
func preflight(ctx context.Context, s *session) error {
	deadline := time.Now().Add(s.o.settle)
	for attempt := 1; ; attempt++ {
		err := s.keyguard(ctx, nil, "preflight")
		if err == nil {
			return nil
		}
		if time.Now().Add(time.Minute).After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("still failing after %d attempts: %w", attempt, err)
		}
		fmt.Fprintf(s.out, "preflight attempt %d failed; again in a minute (a new deployment's first tick, IAM propagation)\n", attempt)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Minute):
		}
	}
}

func backup(ctx context.Context, s *session) error {
	return s.keyguard(ctx, nil, "backup", "create", s.o.db, "-type", "full", "-reason", "acceptance run", "-wait", "-timeout", s.o.backupTimeout.String())
}

// catalog checks the backup list of the database is not empty.
func catalog(ctx context.Context, s *session) error {
	var out []byte
	if err := s.keyguard(ctx, &out, "backup", "list", s.o.db, "-json"); err != nil {
		return err
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(out, &entries); err != nil {
		return fmt.Errorf("backup list -json: %w", err)
	}
	if len(entries) == 0 {
		return fmt.Errorf("no backup of %s in the catalog", s.o.db)
	}
	fmt.Fprintf(s.out, "%d backups of %s in the catalog\n", len(entries), s.o.db)
	return nil
}

// emptyBuckets deletes every object version of the buckets the run created (so that destroy can
// delete them: the module creates them with force_delete = false), after taking the fleet
// object out of the Terraform state (it is deleted with the rest).
func emptyBuckets(tf func(...string) []string) func(context.Context, *session) error {
	return func(ctx context.Context, s *session) error {
		if s.env == nil {
			// The run failed before reading the outputs (a partial apply): read what exists.
			if err := outputs(tf("output", "-json"))(ctx, s); err != nil {
				return nil // nothing to empty as far as Terraform knows; destroy still runs
			}
		}
		if err := s.terraform(ctx, nil, tf("state", "rm", "module.keyguard.ibm_cos_bucket_object.fleet")...); err != nil {
			fmt.Fprintf(s.errOut, "state rm of the fleet object: %v (going on)\n", err)
		}
		if len(s.buckets) == 0 {
			return nil
		}
		client, err := objstore.NewCOSClient(objstore.Options{Endpoint: s.env[config.EnvCOSEndpoint], Region: s.env[config.EnvCOSRegion],
			APIKey: s.o.apiKey, InstanceCRN: s.env[config.EnvCOSInstanceCRN], IAMTokenURL: iamTokenURL(s.env[config.EnvIAMURL])})
		if err != nil {
			return err
		}
		var errs []error
		for _, b := range s.buckets {
			n, err := emptyBucket(ctx, client, b)
			fmt.Fprintf(s.out, "emptied %s: %d object versions deleted\n", b, n)
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
}

func iamTokenURL(base string) string {
	if base == "" {
		base = "https://iam.cloud.ibm.com"
	}
	return strings.TrimRight(base, "/") + "/identity/token"
}

// emptyBucket deletes every version and delete marker in bucket.
func emptyBucket(ctx context.Context, c *s3.S3, bucket string) (int, error) {
	n := 0
	var errs []error
	err := c.ListObjectVersionsPagesWithContext(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)}, func(p *s3.ListObjectVersionsOutput, _ bool) bool {
		type kv struct{ key, version *string }
		var all []kv
		for _, v := range p.Versions {
			all = append(all, kv{v.Key, v.VersionId})
		}
		for _, m := range p.DeleteMarkers {
			all = append(all, kv{m.Key, m.VersionId})
		}
		for _, x := range all {
			if _, err := c.DeleteObjectWithContext(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: x.key, VersionId: x.version}); err != nil {
				errs = append(errs, fmt.Errorf("delete %s (%s): %w", aws.StringValue(x.key), aws.StringValue(x.version), err))
				continue
			}
			n++
		}
		return true
	})
	return n, errors.Join(append(errs, err)...)
}
