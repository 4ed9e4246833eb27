package jailprog

import (
	"fmt"
	"io"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The parent ↔ child protocol, on one SOCK_SEQPACKET socket pair.
//
// The child inherits every fd of warden; its program first moves the fds it
// keeps to 3, 4, ... (the caller's --pass-fd fds, then its end of the sync
// socket) and closes the rest.
//
//	#  direction       message   when / content
//	1  parent → child  go        the ID maps are written and the network helper
//	                             is attached: any bytes (the resolv.conf of the
//	                             network helper when the program writes one);
//	                             EOF instead means the parent is gone: exit
//	2  child → parent  error     a step failed: Prog (0 init, 1 payload), Step,
//	                             Errno; init exits 1 after it, the payload 127
//	   child → parent  notify    init (or an exec child) with a terminal: its
//	                             master (NotifyConsole, SCM_RIGHTS), for the
//	                             engine's console socket
//	   child → parent  notify    init, with createContainer hooks, once its
//	                             mounts are made: hooks (NotifyHooks, no fd);
//	                             it then reads the container's state, which
//	                             the parent sends after the runtime's own
//	                             hooks (createRuntime), and runs its hooks
//	   parent → child  state     the container's state for the hooks: for the
//	                             createContainer hooks (after "hooks"), then
//	                             for the startContainer hooks (the payload
//	                             reads it after `start`; without
//	                             createContainer hooks it follows "go")
//	   child → parent  notify    init, with a start gate: ready (NotifyReady,
//	                             no fd; if nobody hears it, init exits), then
//	                             it blocks until `oci start`
//	   child → parent  notify    init, while it mounts: the tmpfs of each
//	                             overlay's upper layer (Step: NotifyOverlay+i,
//	                             the fd by SCM_RIGHTS), for the write-set
//	   child → parent  notify    init, while it mounts: each traced directory's
//	                             /dev/fuse, once its FUSE mount exists (Step:
//	                             NotifyTrace+i, SCM_RIGHTS); warden serves it,
//	                             and init's later steps that look inside the
//	                             mount wait for that
//	   payload → parent notify   with --seccomp-audit: the seccomp listener fd
//	                             (Step: NotifyListener; SCM_RIGHTS), before
//	                             execve
//	3  child → parent  started   init forked the payload: Pid (in the jail),
//	                             Marks (OpMark bits), its pidfd (SCM_RIGHTS)
//	   child → parent  stopped   the payload stopped (Status: the signal)
//	4  child → parent  exit      the payload ended (Status: wait status,
//	                             Rusage) and every other process of the jail
//	                             was killed and reaped; init exits 0 (an OCI
//	                             container's: with the payload's status)
//
// Every child → parent message is one Message, fixed size, native byte
// order. After "error" or "exit" the child exits. If the socket closes before
// "exit", the parent reports the jail as killed.
const (
	MsgError   = 1
	MsgStarted = 2
	MsgStopped = 3
	MsgExit    = 4
	MsgNotify  = 5
)

// Message is one child → parent packet.
type Message struct {
	Kind   uint32
	Prog   uint32 // for MsgError: 0 init's program, 1 the payload's
	Step   int32  // for MsgError: the failed step; StepFork: the payload's clone
	Errno  int32
	Pid    int32
	Status int32
	Marks  uint64
	Rusage unix.Rusage
	// FD is the fd that came with the packet, -1 if none (not on the wire).
	FD int `json:"-"`
}

// Tags of a "notify" message (its Step).
const (
	NotifyListener = 0
	// NotifyReady: init built the jail and waits at its start gate (an
	// OCI container after create); no fd.
	NotifyReady = 1
	// NotifyHooks: init is about to run an OCI container's createContainer
	// hooks and waits for its state; no fd.
	NotifyHooks = 2
	// NotifyConsole: the master of an OCI container's terminal.
	NotifyConsole = 3
	NotifyOverlay = 4 // + the overlay's index in the plan, below NotifyTrace
	// NotifyTrace: + the traced directory's index in the plan: the
	// /dev/fuse descriptor of its mount, for warden to serve.
	NotifyTrace = 1 << 16
)

// StepFork is the Step of an error in init's fork of the payload.
const StepFork = -1

// wireSize is the number of bytes of a Message on the wire (without FD).
const wireSize = int(unsafe.Offsetof(Message{}.FD))

// Recv reads one message from the parent's end of the sync socket.
func Recv(fd int) (Message, error) {
	var m Message
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&m)), wireSize)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	m.FD = -1
	if err != nil {
		return m, err
	}
	if n == 0 {
		return m, io.EOF
	}
	if oobn > 0 {
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cms) > 0 {
			if fds, err := unix.ParseUnixRights(&cms[0]); err == nil && len(fds) > 0 {
				m.FD = fds[0]
			}
		}
	}
	if n != wireSize {
		if m.FD >= 0 {
			unix.Close(m.FD)
		}
		return m, fmt.Errorf("bad message from the jail's init: %d bytes, want %d", n, wireSize)
	}
	return m, nil
}
