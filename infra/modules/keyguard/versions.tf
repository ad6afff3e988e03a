terraform {
  required_version = ">= 1.5.0"

  required_providers {
    ibm = {
      # 1.88.0 added run_compute_resource_token_enabled to Code Engine apps and jobs, which the
      # trusted profile needs.
      source  = "IBM-Cloud/ibm"
      version = ">= 1.88.0"
    }
  }
}
