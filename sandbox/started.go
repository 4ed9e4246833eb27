package sandbox

// StartInfo is what Plan.Started learns once the payload runs.
type StartInfo struct {
	InitPid, PayloadPid int
	Limits              map[string]string
	// Exec is what `warden exec` needs (with Plan.ExecSocket).
	Exec ExecInfo
}
