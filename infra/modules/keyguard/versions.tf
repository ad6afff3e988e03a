terraform {
  required_version = ">= 1.5.0"

  required_providers {
    ibm = {
      # 2.3.0 made ibm_en_source.store_notifications required; infra/check validates every
      # argument against the schemas of 2.3.0 to 2.5.0 (infra/check/schema_ibm.go).
      source  = "IBM-Cloud/ibm"
      version = ">= 2.3.0, < 3.0.0"
    }
    time = {
      # time_sleep: waits for IAM authorizations to propagate.
      source  = "hashicorp/time"
      version = ">= 0.9.1, < 1.0.0"
    }
  }
}
