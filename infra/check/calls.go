package check

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// metaArguments of a module block that are not input variables.
var metaArguments = map[string]bool{"source": true, "version": true, "providers": true, "depends_on": true, "count": true, "for_each": true}

// Calls checks a root module's module blocks against the modules they call (local sources
// only): each source loads, every required variable is passed, every argument is a variable of
// the callee, and every module.<name>.<output> the root refers to is an output of the callee.
func Calls(root *Module) []string {
	var p []string
	callees := map[string]*Module{}
	names := make([]string, 0, len(root.Calls))
	for name := range root.Calls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := root.Calls[name]
		if c.Source == "" || !(len(c.Source) > 1 && c.Source[0] == '.') {
			p = append(p, fmt.Sprintf("module %s: source %q is not a local path", name, c.Source))
			continue
		}
		callee, err := Load(filepath.Join(root.Dir, c.Source))
		if err != nil {
			p = append(p, fmt.Sprintf("module %s: %v", name, err))
			continue
		}
		callees[name] = callee
		for arg := range c.Block.Body.Attributes {
			if metaArguments[arg] {
				continue
			}
			if _, ok := callee.Variables[arg]; !ok {
				p = append(p, fmt.Sprintf("module %s: argument %s is not a variable of %s", name, arg, c.Source))
			}
		}
		vars := make([]string, 0, len(callee.Variables))
		for v := range callee.Variables {
			vars = append(vars, v)
		}
		sort.Strings(vars)
		for _, v := range vars {
			if callee.Variables[v].Default != nil {
				continue
			}
			if _, ok := c.Block.Body.Attributes[v]; !ok {
				p = append(p, fmt.Sprintf("module %s: required variable %s is not passed", name, v))
			}
		}
	}
	for _, f := range root.Files {
		_ = hclsyntax.VisitAll(f.Body.(*hclsyntax.Body), func(n hclsyntax.Node) hcl.Diagnostics {
			st, ok := n.(*hclsyntax.ScopeTraversalExpr)
			if !ok || st.Traversal.RootName() != "module" || len(st.Traversal) < 3 {
				return nil
			}
			call, ok1 := st.Traversal[1].(hcl.TraverseAttr)
			out, ok2 := st.Traversal[2].(hcl.TraverseAttr)
			if !ok1 || !ok2 {
				return nil
			}
			callee := callees[call.Name]
			if callee == nil {
				if _, declared := root.Calls[call.Name]; !declared {
					p = append(p, fmt.Sprintf("%s: module %s is not declared", st.SrcRange.String(), call.Name))
				}
				return nil
			}
			if _, ok := callee.Outputs[out.Name]; !ok {
				p = append(p, fmt.Sprintf("%s: module %s has no output %s", st.SrcRange.String(), call.Name, out.Name))
			}
			return nil
		})
	}
	sort.Strings(p)
	return p
}
