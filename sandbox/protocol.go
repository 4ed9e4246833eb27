package sandbox

// The parent ↔ stage-2 protocol.
//
// Files stage-2 inherits (ExtraFiles):
//
//	fd 3  plan    pipe, parent → stage-2: one JSON Plan, then EOF
//	fd 4  sync    SOCK_SEQPACKET socket pair: one JSON Message per packet
//	fd 5  log     pipe, stage-2 → parent: slog text records (never the payload's stderr)
//	fd 6… passed  the caller's --pass-fd fds, in order (the payload gets them from fd 3 on)
//
// Messages on fd 4, in order:
//
//	#  direction        kind     when / payload
//	1  parent → stage2  go       ID maps written (and, later, the network helper
//	                             attached); stage-2 may start setting up
//	2a stage2 → parent  notify   with --seccomp-audit only, before the payload
//	                             starts: the seccomp listener fd (SCM_RIGHTS);
//	                             the parent answers its notifications
//	2  stage2 → parent  ready    the payload was started (Pid: its pid in the jail)
//	   stage2 → parent  error    setup failed (Error); stage-2 exits 1 afterwards
//	   stage2 → parent  stopped  the payload, holding the terminal, was stopped
//	                             (Ctrl-Z; Status: the signal); the parent stops
//	                             itself until the caller's shell resumes it
//	   parent → stage2  continue then (Status 1: fg, the payload gets the
//	                             terminal back; 0: bg); stage-2 resumes it
//	3  stage2 → parent  exit     the payload ended (Status: wait status, Rusage);
//	                             every other jail process was killed and reaped
//
// After "error" or "exit" stage-2 exits. If the socket closes before "exit",
// the parent reports the jail as killed (stage-2 died: SIGKILL, OOM).
const (
	fdPlan = 3
	fdSync = 4
	fdLog  = 5
	fdPass = 6
)

// MsgKind names a protocol message.
type MsgKind string

const (
	MsgGo       MsgKind = "go"
	MsgReady    MsgKind = "ready"
	MsgError    MsgKind = "error"
	MsgExit     MsgKind = "exit"
	MsgNotify   MsgKind = "notify"
	MsgStopped  MsgKind = "stopped"
	MsgContinue MsgKind = "continue"
)

// Message is one packet on the sync socket.
type Message struct {
	Kind   MsgKind     `json:"kind"`
	Pid    int         `json:"pid,omitempty"`
	Error  *StageError `json:"error,omitempty"`
	Status int         `json:"status,omitempty"` // wait status (syscall.WaitStatus)
	Usage  *Usage      `json:"usage,omitempty"`
	// FD is an fd that came with the packet (SCM_RIGHTS), -1 if none.
	FD int `json:"-"`
}

// Usage is the payload's resource use, from wait4(2).
type Usage struct {
	UserUsec   int64 `json:"user_usec"`
	SystemUsec int64 `json:"system_usec"`
	MaxRSSKiB  int64 `json:"max_rss_kib"`
}
