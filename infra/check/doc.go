// Package check verifies the Terraform under infra/ without a cloud account or a provider.
//
// It parses every .tf file with hashicorp/hcl (hclsyntax), checks that the files are formatted
// the way terraform fmt leaves them, checks every argument, block and attribute read against
// the IBM provider's resource schemas (schema_ibm.go, read from the provider's source of the
// releases ProviderConstraint admits), and evaluates a module symbolically: variables take the
// values of a test profile or their defaults, locals, count and for_each are evaluated for
// real (files are read, YAML decoded), and every attribute of a resource or data source reads
// back as a symbolic reference such as «ibm_code_engine_app.fn["scheduler"].endpoint». The
// checks then follow those references to assert what the deployment must guarantee, against
// the code's own sources of truth: every app and job exists, every variable a main reads is
// set, every event route has a topic rule, a subscription and a destination pointing at its
// function; required arguments are set and values are ones the provider accepts; IAM role
// names are the ones IAM defines; each function's trusted profile holds exactly what its code
// calls (FunctionAccess, derived from functions/*/main.go by a test) and no Manager or
// wildcard; resources needing an authorization wait for it to propagate; preconditions hold;
// images and catalog entries reach an archive under Object Lock while state stays unlocked;
// alerts reach a person; every bucket is encrypted with a Key Protect key.
//
// The tests of this package run the checks over infra/modules/keyguard and infra/examples/basic
// and, for every check, over a mutated copy that must fail. Nothing here talks to a network.
package check
