"""What the template's tests share, one idea a module (as the rendered project's own
backend/tests/support/): where things are (`paths`), running commands (`commands`),
rendering a variant (`rendering`), the template's own data files (`template_files`),
databases on the shared server (`databases`), a free port (`ports`), waiting for a
condition (`polling`), the rendered service started and served (`service`), a
throwaway PostgreSQL cluster (`postgres_cluster`), PgBouncer (`pgbouncer`), the TCP
relay (`tcp_relay`), HTTP answers under test (`http_answers`), the service's JSON log
(`json_logs`) and metrics (`metrics`), k6 (`k6`), the rendered files read as their
tools read them (`shipped_files`, `deploy_files`), the Node tools (`node_tools`),
the console in Chromium (`browser`, `console_page`), Vercel's edge (`vercel_host`),
the compose stack (`compose_stack`) and the fault tests' rig (`fault_rig`)."""
