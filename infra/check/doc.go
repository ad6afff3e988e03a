// Package check verifies the Terraform under infra/ without a cloud account or a provider.
//
// It parses every .tf file with hashicorp/hcl (hclsyntax), checks that the files are formatted
// the way terraform fmt leaves them, and evaluates a module symbolically: variables take the
// values of a test profile or their defaults, locals, count and for_each are evaluated for
// real, and every attribute of a resource or data source reads back as a symbolic reference
// such as «ibm_code_engine_app.fn["scheduler"].endpoint». The checks then follow those
// references to assert what the deployment must guarantee, against the code's own source of
// truth in shared/config: every app and job exists, every variable a main reads is set, every
// event route has a topic rule, a subscription and a destination pointing at its function,
// IAM grants no Manager and no wildcard, every bucket is encrypted with a Key Protect key.
//
// The tests of this package run the checks over infra/modules/keyguard and infra/examples/basic
// and, for every check, over a mutated copy that must fail. Nothing here talks to a network.
package check
