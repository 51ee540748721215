// Package tls loads and checks the sidecar's Kafka security material: the TLS CA, client certificate and
// key (PEM values or files, the key optionally encrypted), and the SASL credentials (PLAIN, SCRAM,
// OAUTHBEARER by OIDC client credentials). It turns them into the librdkafka properties that every client
// (consumer, producer, admin) shares, and it re-reads file-based material so that a renewed certificate
// or a rotated password can be picked up without a restart.
//
// The package is named tls after its directory (the layout's tls/). It uses crypto/tls only to hand its
// material to Go TLS clients (Material.ClientTLS) and imports it as cryptotls; an importer that needs
// both aliases one of them.
//
// Every problem is reported as an [*Error] that names the environment variable at fault and never
// contains a secret: not a password, not key material, not a token.
package tls

// The environment variables this package reads. Env's struct tags spell the same names.
const (
	VarProtocol          = "KAFKA_SECURITY_PROTOCOL"
	VarCACert            = "KAFKA_SSL_CA_CERT"
	VarCACertFile        = "KAFKA_SSL_CA_CERT_FILE"
	VarClientCert        = "KAFKA_SSL_CLIENT_CERT"
	VarClientCertFile    = "KAFKA_SSL_CLIENT_CERT_FILE"
	VarClientKey         = "KAFKA_SSL_CLIENT_KEY"
	VarClientKeyFile     = "KAFKA_SSL_CLIENT_KEY_FILE"
	VarClientKeyPass     = "KAFKA_SSL_CLIENT_KEY_PASS"
	VarClientKeyPassFile = "KAFKA_SSL_CLIENT_KEY_PASS_FILE"
	VarVerifyHostname    = "KAFKA_SSL_VERIFY_HOSTNAME"
	VarSASLMechanism     = "KAFKA_SASL_MECHANISM"
	VarSASLUsername      = "KAFKA_SASL_USERNAME"
	VarSASLPassword      = "KAFKA_SASL_PASSWORD"
	VarSASLPasswordFile  = "KAFKA_SASL_PASSWORD_FILE"
	VarOAuthClientID     = "KAFKA_SASL_OAUTHBEARER_CLIENT_ID"
	VarOAuthSecret       = "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"
	VarOAuthSecretFile   = "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET_FILE"
	VarOAuthTokenURL     = "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"
	VarOAuthScope        = "KAFKA_SASL_OAUTHBEARER_SCOPE"
	VarOAuthExtensions   = "KAFKA_SASL_OAUTHBEARER_EXTENSIONS"
)

// Env is the security part of the sidecar's environment, as envconfig reads it. Values are taken as
// given; [Parse] checks them.
type Env struct {
	Protocol          string `envconfig:"KAFKA_SECURITY_PROTOCOL" default:"PLAINTEXT"`
	CACert            string `envconfig:"KAFKA_SSL_CA_CERT"`
	CACertFile        string `envconfig:"KAFKA_SSL_CA_CERT_FILE"`
	ClientCert        string `envconfig:"KAFKA_SSL_CLIENT_CERT"`
	ClientCertFile    string `envconfig:"KAFKA_SSL_CLIENT_CERT_FILE"`
	ClientKey         string `envconfig:"KAFKA_SSL_CLIENT_KEY"`
	ClientKeyFile     string `envconfig:"KAFKA_SSL_CLIENT_KEY_FILE"`
	ClientKeyPass     string `envconfig:"KAFKA_SSL_CLIENT_KEY_PASS"`
	ClientKeyPassFile string `envconfig:"KAFKA_SSL_CLIENT_KEY_PASS_FILE"`
	// VerifyHostname is a string so that a bad value is reported by Parse without echoing anything.
	VerifyHostname   string `envconfig:"KAFKA_SSL_VERIFY_HOSTNAME" default:"true"`
	SASLMechanism    string `envconfig:"KAFKA_SASL_MECHANISM"`
	SASLUsername     string `envconfig:"KAFKA_SASL_USERNAME"`
	SASLPassword     string `envconfig:"KAFKA_SASL_PASSWORD"`
	SASLPasswordFile string `envconfig:"KAFKA_SASL_PASSWORD_FILE"`
	OAuthClientID    string `envconfig:"KAFKA_SASL_OAUTHBEARER_CLIENT_ID"`
	OAuthSecret      string `envconfig:"KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"`
	OAuthSecretFile  string `envconfig:"KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET_FILE"`
	OAuthTokenURL    string `envconfig:"KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"`
	OAuthScope       string `envconfig:"KAFKA_SASL_OAUTHBEARER_SCOPE"`
	OAuthExtensions  string `envconfig:"KAFKA_SASL_OAUTHBEARER_EXTENSIONS"`
}

// Error is a bad or missing piece of security configuration or material. Var names the environment
// variable; Msg says what is wrong and never holds a secret.
type Error struct {
	Var string
	Msg string
}

func (e *Error) Error() string { return e.Var + ": " + e.Msg }

func errorf(v, msg string) *Error { return &Error{Var: v, Msg: msg} }
