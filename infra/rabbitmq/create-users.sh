#!/bin/sh
# Gives the RabbitMQ users of definitions.json their passwords at deploy time; no password is committed
# (definitions.json creates every user without one, so nobody can log in before this ran).
#
# One user per service, each allowed to publish only its own event types on `mana.events` and to read only
# its own queues (see definitions.json and README, "Least privilege"), plus `mana`, the administrator
# (management UI, dead-letter tooling). Run inside the broker's container or anywhere rabbitmqctl reaches
# the node; every password comes from the environment:
#
#   AMQP_ADMIN_PASSWORD   mana           AUTH_AMQP_PASSWORD   auth-svc     VAULT_AMQP_PASSWORD    vault-svc
#   GDPR_AMQP_PASSWORD    gdpr-svc       ADMIN_AMQP_PASSWORD  admin-svc    CREDITS_AMQP_PASSWORD  credits-svc
#   GATEWAY_AMQP_PASSWORD gateway
#
# docker compose runs it next to the broker (see docker-compose.yml); in Kubernetes run it as a Job with
# the same variables from the Secret. Idempotent: re-running sets the same passwords again.
set -eu

rabbitmqctl await_startup >/dev/null

missing=''
for pair in mana:AMQP_ADMIN_PASSWORD auth-svc:AUTH_AMQP_PASSWORD vault-svc:VAULT_AMQP_PASSWORD gdpr-svc:GDPR_AMQP_PASSWORD \
  admin-svc:ADMIN_AMQP_PASSWORD credits-svc:CREDITS_AMQP_PASSWORD gateway:GATEWAY_AMQP_PASSWORD; do
  var=${pair#*:}
  eval "value=\${$var:-}"
  if [ -z "$value" ]; then missing="$missing $var"; fi
done
if [ -n "$missing" ]; then
  echo "create-users.sh: not set:$missing" >&2
  exit 1
fi

for pair in mana:AMQP_ADMIN_PASSWORD auth-svc:AUTH_AMQP_PASSWORD vault-svc:VAULT_AMQP_PASSWORD gdpr-svc:GDPR_AMQP_PASSWORD \
  admin-svc:ADMIN_AMQP_PASSWORD credits-svc:CREDITS_AMQP_PASSWORD gateway:GATEWAY_AMQP_PASSWORD; do
  user=${pair%%:*}
  var=${pair#*:}
  eval "value=\${$var}"
  # rabbitmqctl 3.10 takes the password as an argument only: run this where no untrusted process can list
  # command lines (the broker's own container or Job).
  rabbitmqctl change_password "$user" "$value" >/dev/null 2>&1 ||
    { echo "create-users.sh: could not set the password of $user (is definitions.json loaded?)" >&2; exit 1; }
  echo "create-users.sh: password of $user set"
done
