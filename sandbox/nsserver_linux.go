package sandbox

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// nsFile is a namespace file of /proc/PID/ns and its clone flag.
type nsFile struct {
	file string
	flag int
}

// jailNamespaces are the namespace files of a jail's init, in the order
// `warden exec` joins them: the user namespace first, so that the others
// are joined with its capabilities.
var jailNamespaces = []nsFile{
	{"user", unix.CLONE_NEWUSER}, {"mnt", unix.CLONE_NEWNS}, {"pid", unix.CLONE_NEWPID}, {"net", unix.CLONE_NEWNET},
	{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"cgroup", unix.CLONE_NEWCGROUP},
}

// nsServer hands the namespaces of a running jail to `warden exec`.
//
// Joining them needs their fds: setns(2) on a pidfd of the jail's init, or
// opening /proc/PID/ns/*, needs ptrace access to init, which is
// non-dumpable once it has built the jail (the jail's own processes must not
// reach it). So the supervisor opens them before init goes on, and serves
// them on a unix socket in the jail's private state directory, to
// processes of its own user only (SO_PEERCRED).
type nsServer struct {
	fds []int
	ln  *net.UnixListener
}

// serveNamespaces opens the namespaces of pid and serves them at path.
func serveNamespaces(pid int, path string) (*nsServer, error) {
	s := &nsServer{}
	for _, ns := range jailNamespaces {
		fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/"+ns.file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("open the jail's %s namespace: %w", ns.file, err)
		}
		s.fds = append(s.fds, fd)
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("exec socket: %w", err)
	}
	s.ln = ln
	go s.serve()
	return s, nil
}

func (s *nsServer) serve() {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		if peerIsUs(c) {
			c.WriteMsgUnix([]byte("ns"), unix.UnixRights(s.fds...), nil)
		}
		c.Close()
	}
}

func peerIsUs(c *net.UnixConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		ok = err == nil && int(cred.Uid) == os.Getuid()
	})
	return ok
}

func (s *nsServer) close() {
	if s == nil {
		return
	}
	if s.ln != nil {
		s.ln.Close() // removes the socket file
		s.ln = nil
	}
	for _, fd := range s.fds {
		unix.Close(fd)
	}
	s.fds = nil
}

// fetchNamespaces asks the supervisor at path for the jail's namespace fds.
func fetchNamespaces(path string) ([]int, error) {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("the jail's supervisor: %w", err)
	}
	defer c.Close()
	oob := make([]byte, unix.CmsgSpace(4*len(jailNamespaces)))
	buf := make([]byte, 16)
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("the jail's supervisor: %w", err)
	}
	cms, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(cms) != 1 {
		return nil, fmt.Errorf("the jail's supervisor sent no namespaces")
	}
	fds, err := unix.ParseUnixRights(&cms[0])
	if err != nil || len(fds) != len(jailNamespaces) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("the jail's supervisor sent %d namespaces, want %d", len(fds), len(jailNamespaces))
	}
	return fds, nil
}
