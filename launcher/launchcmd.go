package launcher

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// DefaultLaunchCmd is the command that starts ranks on other hosts when
// Config.LaunchCmd is empty.
const DefaultLaunchCmd = "ssh -o BatchMode=yes {host}"

// hostPlaceholder is replaced by the host's name in every word of a launch
// command.
const hostPlaceholder = "{host}"

// launchTemplate is a parsed launch command: the command line that runs the
// rest of its arguments on a host.
type launchTemplate struct {
	words []string // split like a shell would, {host} not yet replaced
	// shell is set when the command hands the remote side one string that a
	// shell parses again (ssh and rsh join their arguments with spaces):
	// every word after the template is then shell-quoted. Other commands
	// (ip netns exec, nsenter, a wrapper script) get the words as they are.
	shell bool
}

// parseLaunchCmd parses a launch command template. Words are separated by
// blanks; '…' and "…" quote (a backslash escapes the next character outside
// single quotes). At least one word must contain {host}.
func parseLaunchCmd(s string) (launchTemplate, error) {
	words, err := splitWords(s)
	if err != nil {
		return launchTemplate{}, fmt.Errorf("launch command %q: %w", s, err)
	}
	if len(words) == 0 {
		return launchTemplate{}, errors.New("empty launch command")
	}
	if !strings.Contains(s, hostPlaceholder) {
		return launchTemplate{}, fmt.Errorf("launch command %q: no %s in it", s, hostPlaceholder)
	}
	base := filepath.Base(words[0])
	return launchTemplate{words: words, shell: base == "ssh" || base == "rsh"}, nil
}

// command is the argv that runs remote (a program and its arguments) on
// host.
func (t launchTemplate) command(host string, remote []string) []string {
	argv := make([]string, 0, len(t.words)+len(remote))
	for _, w := range t.words {
		argv = append(argv, strings.ReplaceAll(w, hostPlaceholder, host))
	}
	for _, w := range remote {
		if t.shell {
			w = shellQuote(w)
		}
		argv = append(argv, w)
	}
	return argv
}

// splitWords splits s into words as a POSIX shell would, without
// expansions.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
			continue
		case c == '\\':
			if i++; i == len(s) {
				return nil, errors.New("trailing backslash")
			}
			cur.WriteByte(s[i])
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated '")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += 1 + end
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("unterminated \"")
			}
		default:
			cur.WriteByte(c)
		}
		inWord = true
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes w for a POSIX shell.
func shellQuote(w string) string {
	if shellSafe.MatchString(w) {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// jobOwnedVars are variables the launcher sets for each rank; gorun's own
// values (from an outer job) are never forwarded.
var jobOwnedVars = map[string]bool{
	"GORUN_JOBID": true, "GORUN_JOB_KEY": true, "GORUN_WATCH": true, "GORUN_LOCAL_RANK": true,
	"GORUN_LOCAL_SIZE": true, "GORUN_CPUS": true, "GORUN_RENDEZVOUS": true,
}

// launchCommand is the command that starts remote rank r: the launch
// command for its host, running remoteArgv there, with the launcher's
// environment (see launchEnv).
func (j *job) launchCommand(r int) *exec.Cmd {
	argv := j.launch.command(j.slots[r].host, j.remoteArgv(r))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = launchEnv(os.Environ())
	return cmd
}

// remoteArgv is what the launch command runs on rank r's host: env with
// the rank's variables, then the program and its arguments. ssh does not
// forward the environment, so the variables travel on the command line:
// gorun's own GORUN_* settings (and GOMAXPROCS if set), Config.Env, then
// the job's. The job key is not among them: it travels on standard input (see startRank).
func (j *job) remoteArgv(r int) []string {
	s := j.slots[r]
	argv := []string{"env"}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GORUN_") && !jobOwnedVars[k] || k == "GOMAXPROCS" && v != "" {
			argv = append(argv, kv)
		}
	}
	argv = append(argv, j.cfg.Env...)
	argv = append(argv,
		"PMI_PORT="+j.remote.pmiAddr(s.host),
		"PMI_ID="+strconv.Itoa(r),
		"PMI_RANK="+strconv.Itoa(r),
		"PMI_SIZE="+strconv.Itoa(j.cfg.N),
		"GORUN_JOBID="+j.id,
		"GORUN_JOB_KEY=stdin", // the key is the first line of the launch command's input
		"GORUN_WATCH="+j.remote.watchAddr(s.host),
		"GORUN_LOCAL_RANK="+strconv.Itoa(s.local),
		"GORUN_LOCAL_SIZE="+strconv.Itoa(s.localSize),
	)
	argv = append(argv, j.prog)
	return append(argv, j.cfg.Args...)
}
