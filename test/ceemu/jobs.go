package ceemu

import (
	"net/http"
	"slices"
)

// handleGetJob answers a job look-up: every name exists unless Options.Jobs lists the jobs.
func (e *Emulator) handleGetJob(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !e.jobExists(name) {
		apiError(w, http.StatusNotFound, "job_not_found", "job "+name+" not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "id": stableID(name), "project_id": r.PathValue("project_id"),
		"resource_type": "job_v2", "run_mode": "task", "image_reference": "icr.io/keyguard/" + name + ":local"})
}

// jobExists reports whether job name exists: every name when Options.Jobs was empty.
func (e *Emulator) jobExists(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.jobs) == 0 || slices.Contains(e.jobs, name)
}

// RemoveJob deletes the job name: looking it up and creating runs of it answer 404 from then
// on. It turns a Jobs-less emulator (every name exists) into one that lists only what is left
// of its Jobs.
func (e *Emulator) RemoveJob(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.jobs = slices.DeleteFunc(e.jobs, func(j string) bool { return j == name })
	if len(e.jobs) == 0 {
		e.jobs = []string{"\x00none"} // a non-empty list that names no job
	}
}

// AddJob makes the job name exist.
func (e *Emulator) AddJob(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Contains(e.jobs, name) {
		e.jobs = append(e.jobs, name)
	}
}

func stableID(name string) string {
	const hexd = "0123456789abcdef"
	b := []byte("00000000-0000-4000-8000-000000000000")
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * 1099511628211
	}
	for i := len(b) - 1; i >= 24 && h > 0; i-- {
		b[i] = hexd[h%16]
		h /= 16
	}
	return string(b)
}
