// Package motoserver runs moto_server (moto's stand-alone AWS emulator, an
// implementation independent of ours and of the AWS SDK) on a reserved
// loopback port for a test; the tests use its AWS Glue Schema Registry API.
//
// moto keeps its state in memory: a Stop loses it. Options.Seed makes the ids
// moto generates (schema version ids among them) repeat from one start to
// the next, so a test that registers the same schemas in the same order after
// a restart gets the same ids back, as if the registry had come back.
package motoserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/ports"
)

// BinEnv names the moto_server executable to run instead of the one on PATH.
const BinEnv = "KINESIS_INGEST_MOTO_SERVER"

// SkipEnv, set to 1, makes Start skip its test when moto_server is missing,
// instead of failing it.
const SkipEnv = "KINESIS_INGEST_MOTO_SKIP"

// Region is the region the clients of this package use.
const Region = "us-east-1"

// Account is the account moto puts every resource in.
const Account = "123456789012"

const startTimeout = 60 * time.Second

// Options change how the server runs.
type Options struct {
	// Seed, when not 0, seeds moto's random ids after every start.
	Seed int
	// Users, when set, turns IAM on: after every start, the server has a
	// user "admin" allowed everything (the helpers of this package sign as
	// it) and these users, and from then on moto allows each request only
	// as the signer's policies say.
	Users []User
}

// User is an IAM user of the server.
type User struct {
	Name string
	// Policy is the user's inline policy document (JSON); "" for none, so
	// that the user may do nothing.
	Policy string
}

// Key is an access key of a user.
type Key struct{ ID, Secret string }

// Server is a running moto_server.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:PORT.
	URL  string
	Port int

	opts Options
	bin  string
	log  string
	res  *ports.Reservation
	cmd  *exec.Cmd
	done chan struct{}
	keys map[string]Key // by user name, when Options.Users
}

// Start starts moto_server on a reserved port and stops it when the test
// ends. It fails the test if moto_server is missing (unless SkipEnv=1) or
// does not start.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := os.Getenv(BinEnv)
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("moto_server"); err != nil {
			msg := "motoserver: no moto_server on PATH (pip's moto[server]): install it, set " + BinEnv + " to it, or set " + SkipEnv + "=1 to skip the tests that need it"
			if os.Getenv(SkipEnv) == "1" {
				t.Skip(msg)
			}
			t.Fatal(msg)
		}
	}
	res, err := ports.Reserve(1)
	if err != nil {
		t.Fatalf("motoserver: %v", err)
	}
	s := &Server{opts: opts, bin: bin, log: filepath.Join(t.TempDir(), "moto.log"), res: res, Port: res.Ports[0]}
	s.URL = "http://127.0.0.1:" + strconv.Itoa(s.Port)
	t.Cleanup(func() {
		s.stop()
		res.Release()
	})
	s.Start(t)
	return s
}

// Start starts the server again after Stop, on the same port, with empty
// state (seeded again), and waits until it answers.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if s.cmd != nil {
		t.Fatal("motoserver: Start while running")
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "-H", "127.0.0.1", "-p", strconv.Itoa(s.Port))
	// moto runs botocore inside: the test's AWS settings (an empty
	// AWS_PROFILE, endpoints of other emulators) are not its.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group (Stop reaches what the pyenv shim starts), and
	// killed with the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("motoserver: start %s: %v", s.bin, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	if err := s.ready(); err != nil {
		s.stop()
		t.Fatalf("motoserver: %v; log:\n%s", err, s.tail())
	}
	if len(s.opts.Users) > 0 {
		s.keys = map[string]Key{}
		users := append([]User{{Name: "admin", Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`}}, s.opts.Users...)
		for _, u := range users {
			k, err := s.createUser(u)
			if err != nil {
				t.Fatalf("motoserver: %v", err)
			}
			s.keys[u.Name] = k
		}
		// IAM applies from the next request on.
		resp, err := http.Post(s.URL+"/moto-api/reset-auth", "text/plain", strings.NewReader("0"))
		if err != nil {
			t.Fatalf("motoserver: turn IAM on: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("motoserver: turn IAM on: %s", resp.Status)
		}
	}
}

// Key returns the access key of a user of Options.Users.
func (s *Server) Key(t testing.TB, user string) Key {
	t.Helper()
	k, ok := s.keys[user]
	if !ok {
		t.Fatalf("motoserver: no user %q", user)
	}
	return k
}

// ready waits until the server answers, then seeds it.
func (s *Server) ready() error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-s.done:
			return errors.New("moto_server exited before it answered")
		default:
		}
		resp, err := client.Get(s.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("moto_server did not answer on %s within %v", s.URL, startTimeout)
		}
		time.Sleep(50 * time.Millisecond) // polling a process start, not a stand-in for a condition
	}
	if s.opts.Seed == 0 {
		return nil
	}
	resp, err := client.Post(s.URL+"/moto-api/seed?a="+strconv.Itoa(s.opts.Seed), "text/plain", nil)
	if err != nil {
		return fmt.Errorf("seed moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("seed moto: %s", resp.Status)
	}
	return nil
}

// Stop kills the server and waits for it to exit; its state is lost.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.cmd == nil {
		t.Fatal("motoserver: Stop while stopped")
	}
	s.stop()
}

func (s *Server) stop() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

func (s *Server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Config is an AWS configuration for the server, signing with the given
// static credentials (moto takes any until Options.AuthAfter).
func (s *Server) Config(accessKeyID, secret string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, secret, ""),
		BaseEndpoint: aws.String(s.URL),
	}
}

// Glue is a Glue client of the server (signing as admin with Options.Users).
func (s *Server) Glue() *glue.Client {
	k := Key{ID: "testing", Secret: "testing"}
	if a, ok := s.keys["admin"]; ok {
		k = a
	}
	return glue.NewFromConfig(s.Config(k.ID, k.Secret))
}

// createUser creates u with an access key, through IAM's Query API (signed:
// moto_server tells services apart by the signature's scope).
func (s *Server) createUser(u User) (Key, error) {
	if _, err := s.iam(url.Values{"Action": {"CreateUser"}, "UserName": {u.Name}}); err != nil {
		return Key{}, err
	}
	if u.Policy != "" {
		if _, err := s.iam(url.Values{"Action": {"PutUserPolicy"}, "UserName": {u.Name}, "PolicyName": {"test"}, "PolicyDocument": {u.Policy}}); err != nil {
			return Key{}, err
		}
	}
	body, err := s.iam(url.Values{"Action": {"CreateAccessKey"}, "UserName": {u.Name}})
	if err != nil {
		return Key{}, err
	}
	var out struct {
		ID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	if err := xml.Unmarshal(body, &out); err != nil || out.ID == "" {
		return Key{}, fmt.Errorf("create an access key of %s: unexpected answer %q", u.Name, body)
	}
	return Key{ID: out.ID, Secret: out.Secret}, nil
}

func (s *Server) iam(form url.Values) ([]byte, error) {
	form.Set("Version", "2010-05-08")
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "iam", Region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("iam %s: %w", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("iam %s: %w", form.Get("Action"), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("iam %s: %s: %s", form.Get("Action"), resp.Status, b)
	}
	return b, nil
}

// RegisterAvro registers an Avro schema definition as a version of schema in
// registry (creating either if missing) and returns its version id.
func (s *Server) RegisterAvro(t testing.TB, registry, schema, definition string) string {
	t.Helper()
	return s.Register(t, registry, schema, gluetypes.DataFormatAvro, definition)
}

// Register is RegisterAvro for a schema of any data format.
func (s *Server) Register(t testing.TB, registry, schema string, format gluetypes.DataFormat, definition string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Glue()
	if _, err := c.GetRegistry(ctx, &glue.GetRegistryInput{RegistryId: &gluetypes.RegistryId{RegistryName: aws.String(registry)}}); err != nil {
		var nf *gluetypes.EntityNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("motoserver: get registry %s: %v; log:\n%s", registry, err, s.tail())
		}
		if _, err := c.CreateRegistry(ctx, &glue.CreateRegistryInput{RegistryName: aws.String(registry)}); err != nil {
			t.Fatalf("motoserver: create registry %s: %v", registry, err)
		}
	}
	id := &gluetypes.SchemaId{RegistryName: aws.String(registry), SchemaName: aws.String(schema)}
	if _, err := c.GetSchema(ctx, &glue.GetSchemaInput{SchemaId: id}); err != nil {
		var nf *gluetypes.EntityNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("motoserver: get schema %s/%s: %v", registry, schema, err)
		}
		out, err := c.CreateSchema(ctx, &glue.CreateSchemaInput{
			RegistryId: &gluetypes.RegistryId{RegistryName: aws.String(registry)}, SchemaName: aws.String(schema),
			DataFormat: format, Compatibility: gluetypes.CompatibilityNone, SchemaDefinition: aws.String(definition),
		})
		if err != nil {
			t.Fatalf("motoserver: create schema %s/%s: %v", registry, schema, err)
		}
		return aws.ToString(out.SchemaVersionId)
	}
	out, err := c.RegisterSchemaVersion(ctx, &glue.RegisterSchemaVersionInput{SchemaId: id, SchemaDefinition: aws.String(definition)})
	if err != nil {
		t.Fatalf("motoserver: register a version of %s/%s: %v", registry, schema, err)
	}
	if v := strings.TrimSpace(aws.ToString(out.SchemaVersionId)); v != "" {
		return v
	}
	t.Fatalf("motoserver: register a version of %s/%s: no SchemaVersionId in the answer", registry, schema)
	return ""
}
