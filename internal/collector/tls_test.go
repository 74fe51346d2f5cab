package collector

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

type certPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	kpem []byte
}

func newCert(t *testing.T, cn string, ca *certPair, isCA bool, usage x509.ExtKeyUsage) *certPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: isCA, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	if !isCA {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	return &certPair{cert: cert, key: key,
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		kpem: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})}
}

// TestOTLPMutualTLS: with client_ca_file set, both OTLP listeners require a
// client certificate from that CA, and still require the bearer token.
func TestOTLPMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCert(t, "test-ca", nil, true, 0)
	server := newCert(t, "127.0.0.1", ca, false, x509.ExtKeyUsageServerAuth)
	client := newCert(t, "app", ca, false, x509.ExtKeyUsageClientAuth)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	h := newHarness(t, func(c *Config) {
		c.OTLP.GRPCListen, c.OTLP.HTTPListen = onAddr(), onAddr()
		c.OTLP.TLS = TLSConfig{CertFile: write("server.crt", server.pem), KeyFile: write("server.key", server.kpem),
			ClientCAFile: write("ca.crt", ca.pem)}
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	clientCert, err := tls.X509KeyPair(client.pem, client.kpem)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}
	noCert := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}

	body, _ := ptraceotlp.NewExportRequestFromTraces(ptrace.NewTraces()).MarshalProto()
	post := func(tc *tls.Config, token string) (*http.Response, error) {
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		defer cl.CloseIdleConnections()
		r, _ := http.NewRequest(http.MethodPost, "https://"+h.c.OTLPHTTPAddr+"/v1/traces", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-protobuf")
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := cl.Do(r)
		if err == nil {
			_ = resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := post(withCert, acmeToken); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("client cert + token: %v %v", resp, err)
	}
	if resp, err := post(withCert, "wrong"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("client cert, wrong token: %v %v", resp, err)
	}
	if _, err := post(noCert, acmeToken); err == nil {
		t.Fatal("no client certificate was accepted")
	}

	conn, err := grpc.NewClient(h.c.OTLPGRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(withCert)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+acmeToken)
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequest()); err != nil {
		t.Fatalf("grpc with client cert: %v", err)
	}
	conn2, err := grpc.NewClient(h.c.OTLPGRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(noCert)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if _, err := ptraceotlp.NewGRPCClient(conn2).Export(ctx, ptraceotlp.NewExportRequest()); err == nil {
		t.Fatal("grpc without client certificate was accepted")
	}
}
