package main

import (
	"fmt"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/seldon-kafka/sidecar/tls"
)

// securityFromEnv reads the sidecar's security variables (KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_*,
// KAFKA_SASL_*) from the process environment exactly as the sidecar does (package tls), and returns the
// librdkafka properties for kafka.Settings.Security. Errors name the variable, never a secret.
func securityFromEnv() (map[string]string, error) {
	var env tls.Env
	if err := envconfig.Process("", &env); err != nil {
		return nil, fmt.Errorf("security settings: %v", err)
	}
	s, err := tls.Parse(env)
	if err != nil {
		return nil, err
	}
	m, err := tls.Load(s, time.Now())
	if err != nil {
		return nil, err
	}
	return m.Properties(), nil
}
