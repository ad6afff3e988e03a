package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeploymentPasses runs every check over the module with every profile.
func TestDeploymentPasses(t *testing.T) {
	m := loadModule(t)
	for _, p := range profiles() {
		t.Run(p.name, func(t *testing.T) {
			e := evaluate(t, m, p)
			if problems := All(e); len(problems) > 0 {
				t.Errorf("%d problem(s):\n%s", len(problems), strings.Join(problems, "\n"))
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	problems, err := FormatProblems(infraDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("formatting:\n%s", strings.Join(problems, "\n"))
	}
}

func TestExampleCallsModule(t *testing.T) {
	root, err := Load(exampleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(root.Calls) == 0 {
		t.Fatal("the example calls no module")
	}
	if problems := Calls(root); len(problems) > 0 {
		t.Errorf("module calls:\n%s", strings.Join(problems, "\n"))
	}
	wired := 0
	for _, d := range alertDestinations {
		if _, ok := root.Calls["keyguard"].Block.Body.Attributes[d.Variable]; ok {
			wired++
		}
	}
	if wired == 0 {
		t.Error("the example wires no alert destination")
	}
}

func TestArgumentsAreChecked(t *testing.T) {
	for _, dir := range []string{moduleDir(t), exampleDir(t)} {
		m, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if problems := append(Arguments(m), Providers(m)...); len(problems) > 0 {
			t.Errorf("%s:\n%s", dir, strings.Join(problems, "\n"))
		}
	}
	m := loadModule(t)
	setAttr(t, body(t, m, "ibm_code_engine_app.fn"), "scale_min_instance", "1")
	setAttr(t, body(t, m, "ibm_en_topic.events", "sources", "dynamic:rules", "content"), "event_filter", `"x"`)
	delResource(t, m, "ibm_cos_bucket_object.fleet")
	m.Resources = append(m.Resources, &Resource{Type: "ibm_widget", Name: "w", Block: m.Resource("ibm_cos_bucket.state").Block})
	got := strings.Join(Arguments(m), "\n")
	for _, want := range []string{
		"ibm_code_engine_app.fn: scale_min_instance is not an argument of ibm_code_engine_app in the provider schema",
		"ibm_en_topic.events: sources.rules.event_filter is not an argument of ibm_en_topic",
		"ibm_widget.w: resource type ibm_widget has no recorded provider schema",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in:\n%s", want, got)
		}
	}
}

// The schema table must describe the provider releases the module's constraint admits.
func TestProviderSchemaVersions(t *testing.T) {
	if got := strings.Join(providerSchemaVersions, ","); got != "v2.3.0,v2.4.0,v2.5.0" {
		t.Errorf("schema read from %s; ProviderConstraint %q admits v2.3.0 to v2.5.0", got, ProviderConstraint)
	}
}

func TestProvidersFail(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m *Module)
		want   string
	}{
		{"constraint admits 1.x", func(m *Module) {
			m.Providers["ibm"] = ProviderRequirement{Source: "IBM-Cloud/ibm", Version: ">= 1.88.0"}
		}, `required_providers ibm is IBM-Cloud/ibm ">= 1.88.0", want IBM-Cloud/ibm ">= 2.3.0, < 3.0.0"`},
		{"constraint admits 3.x", func(m *Module) {
			m.Providers["ibm"] = ProviderRequirement{Source: "IBM-Cloud/ibm", Version: ">= 2.3.0"}
		}, `want IBM-Cloud/ibm ">= 2.3.0, < 3.0.0"`},
		{"ibm not declared", func(m *Module) { delete(m.Providers, "ibm") }, "does not declare ibm"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := loadModule(t)
			c.mutate(m)
			if got := strings.Join(Providers(m), "\n"); !strings.Contains(got, c.want) {
				t.Errorf("Providers = %q, want %q", got, c.want)
			}
		})
	}
}

// Copies of the module on disk, each broken the way the provider or IAM would reject at plan or
// apply, fail the checks (the same ones TestDeploymentPasses runs).
func TestBrokenCopiesFail(t *testing.T) {
	cases := []struct {
		name, file, old, new, want string
	}{
		{"without store_notifications", "en.tf", "  store_notifications = var.en_store_notifications\n", "",
			"ibm_en_source.keyguard: argument store_notifications is required by ibm_en_source"},
		{"with the old role name", "locals.tf", `"Event Notification Publisher"`, `"Event Notifications Publisher"`,
			`"Event Notifications Publisher" is not a role IAM defines for event-notifications`},
		{"with a role a function does not need", "locals.tf",
			"completion = { objects = true, delete = true, publish = true, keys = false, rotate = false, job_runs = false",
			"completion = { objects = true, delete = true, publish = true, keys = false, rotate = false, job_runs = true",
			"completion is granted [Writer] on codeengine"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			entries, err := os.ReadDir(moduleDir(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				src, err := os.ReadFile(filepath.Join(moduleDir(t), e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if e.Name() == c.file {
					if !strings.Contains(string(src), c.old) {
						t.Fatalf("%s has no %q", c.file, c.old)
					}
					src = []byte(strings.Replace(string(src), c.old, c.new, 1))
				}
				if err := os.WriteFile(filepath.Join(dir, e.Name()), src, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			problems := append(Arguments(m), All(evaluate(t, m, minimal()))...)
			if got := strings.Join(problems, "\n"); !strings.Contains(got, c.want) {
				t.Errorf("want %q in:\n%s", c.want, got)
			}
		})
	}
}

// Every pattern recorded from the providers compiles, so none is silently left unchecked.
func TestSchemaPatternsCompile(t *testing.T) {
	for _, table := range []map[string]resourceSchema{ibmSchema, timeSchema} {
		for typ, s := range table {
			for name, a := range s.Args {
				if a.Pattern != "" && compiled(a.Pattern) == nil {
					t.Errorf("%s.%s: pattern %q does not compile", typ, name, a.Pattern)
				}
			}
		}
	}
}
