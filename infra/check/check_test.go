package check

import (
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
}

func TestArgumentsAreChecked(t *testing.T) {
	for _, dir := range []string{moduleDir(t), exampleDir(t)} {
		m, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if problems := Arguments(m); len(problems) > 0 {
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
		"ibm_code_engine_app.fn: scale_min_instance is not a checked argument of ibm_code_engine_app",
		"ibm_en_topic.events: sources.rules.event_filter is not a checked argument",
		"ibm_widget.w: resource type ibm_widget has no checked argument list",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in:\n%s", want, got)
		}
	}
}
