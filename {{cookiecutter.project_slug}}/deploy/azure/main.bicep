{%- set budget = cookiecutter | db_budget -%}
{%- set replicas = cookiecutter.api_replicas | int -%}
{%- set tiers = {'Standard_B': 'Burstable', 'Standard_D': 'GeneralPurpose', 'Standard_E': 'MemoryOptimized'} -%}
// {{ cookiecutter.project_name }} on Azure Container Apps with Azure Database for PostgreSQL
// Flexible Server ({{ budget.instance }}, max_connections {{ budget.max_connections }}).
// Replicas scale up to {{ replicas }} x {{ cookiecutter.api_workers }} workers x {{ cookiecutter.db_pool_max_size }} connections,
// the budget the template checked. Release steps: DEPLOYMENT.md.

@description('The image the app runs, e.g. ghcr.io/OWNER/{{ cookiecutter.project_slug }}:TAG')
param image string

@description('The image the migration job runs; set it to the new tag and start the job before changing image.')
param migrationImage string = image

param location string = resourceGroup().location

@description('PostgreSQL administrator login: owns the schema; only the migration job uses it')
param databaseAdminLogin string = '{{ cookiecutter.package_name }}'

@secure()
@description('PostgreSQL administrator password (from your secret store; never committed)')
param databaseAdminPassword string

@secure()
@description('Password of the application role {{ cookiecutter.package_name }}_app (from your secret store); a new value rotates it')
param appDatabasePassword string
{%- if cookiecutter.auth in ["api_key", "both"] %}

@secure()
@description('The HMAC key of the API keys stored hashes, 32+ characters (from your secret store); changing it invalidates every key')
param apiKeyPepper string
{%- endif %}

param databaseName string = '{{ cookiecutter.package_name }}'
{%- if cookiecutter.auth in ["oidc", "both"] %}

@description('The identity provider issuer URL, exactly as its tokens iss claim (DEPLOYMENT.md: Identity providers)')
param authIssuer string

@description('The aud claim every token for this API carries (its identifier at the provider)')
param authAudience string
{%- endif %}

@description('Optional private registry host, e.g. ghcr.io; empty for a public image')
param registryServer string = ''
param registryUsername string = ''
@secure()
param registryPassword string = ''

var name = '{{ cookiecutter.project_slug }}'
var appRole = '{{ cookiecutter.package_name }}_app'
// Above server.graceful_shutdown_seconds (20) so in-flight requests drain.
var terminationGracePeriodSeconds = 30
// Key Vault Secrets User: read secret values, nothing else.
var secretsUserRole = '4633458b-17de-408a-b874-0445c86b69e6'
// Container Apps secrets are references to Key Vault, read with the identity below;
// a new secret version reaches new replicas without a Bicep change.
var vaultSecrets = [
  { name: 'app-database-password', keyVaultUrl: appPasswordSecret.properties.secretUri, identity: identity.id }
  { name: 'owner-database-password', keyVaultUrl: ownerPasswordSecret.properties.secretUri, identity: identity.id }
{%- if cookiecutter.auth in ["api_key", "both"] %}
  { name: 'api-key-pepper', keyVaultUrl: apiKeyPepperSecret.properties.secretUri, identity: identity.id }
{%- endif %}
]
var registrySecrets = empty(registryServer) ? [] : [ { name: 'registry-password', value: registryPassword } ]
var secrets = concat(vaultSecrets, registrySecrets)
var registries = empty(registryServer) ? [] : [
  { server: registryServer, username: registryUsername, passwordSecretRef: 'registry-password' }
]
var databaseHost = database.properties.fullyQualifiedDomainName
// The URLs carry no password: asyncpg reads it from PGPASSWORD, and TLS is asked
// for with PGSSLMODE (libpq's variables, which asyncpg, and so alembic, honours).
var environmentVariables = [
  { name: 'APP_ENVIRONMENT', value: 'production' }
  { name: 'APP_DATABASE__URL', value: 'postgresql://${appRole}@${databaseHost}:5432/${databaseName}' }
  { name: 'PGPASSWORD', secretRef: 'app-database-password' }
  { name: 'PGSSLMODE', value: 'require' }
{%- if cookiecutter.auth in ["api_key", "both"] %}
  { name: 'APP_AUTH__API_KEY_PEPPER', secretRef: 'api-key-pepper' }
{%- endif %}
{%- if cookiecutter.auth in ["oidc", "both"] %}
  { name: 'APP_AUTH__ISSUER', value: authIssuer }
  { name: 'APP_AUTH__AUDIENCE', value: authAudience }
{%- endif %}
]
// The migration job runs as the owner, then creates or updates the application role.
var migrationVariables = [
  { name: 'APP_ENVIRONMENT', value: 'production' }
  { name: 'APP_DATABASE__URL', value: 'postgresql://${databaseAdminLogin}@${databaseHost}:5432/${databaseName}' }
  { name: 'PGPASSWORD', secretRef: 'owner-database-password' }
  { name: 'APP_ROLE_PASSWORD', secretRef: 'app-database-password' }
  { name: 'PGSSLMODE', value: 'require' }
{%- if cookiecutter.auth in ["api_key", "both"] %}
  { name: 'APP_AUTH__API_KEY_PEPPER', secretRef: 'api-key-pepper' }
{%- endif %}
{%- if cookiecutter.auth in ["oidc", "both"] %}
  // The settings load whole, auth's included (auth.issuer is required in production).
  { name: 'APP_AUTH__ISSUER', value: authIssuer }
  { name: 'APP_AUTH__AUDIENCE', value: authAudience }
{%- endif %}
]

// The database is reachable from this network only: no public access, no firewall rule.
resource network 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: '${name}-vnet'
  location: location
  properties: {
    addressSpace: { addressPrefixes: [ '10.40.0.0/16' ] }
    subnets: [
      {
        name: 'apps'
        properties: {
          addressPrefix: '10.40.0.0/23'
          delegations: [ { name: 'apps', properties: { serviceName: 'Microsoft.App/environments' } } ]
        }
      }
      {
        name: 'database'
        properties: {
          addressPrefix: '10.40.2.0/24'
          delegations: [ { name: 'database', properties: { serviceName: 'Microsoft.DBforPostgreSQL/flexibleServers' } } ]
        }
      }
    ]
  }
}

resource databaseDns 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: '${name}.private.postgres.database.azure.com'
  location: 'global'
}

resource databaseDnsLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: databaseDns
  name: '${name}-vnet'
  location: 'global'
  properties: {
    registrationEnabled: false
    virtualNetwork: { id: network.id }
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${name}-identity'
  location: location
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('kv${uniqueString(resourceGroup().id, name)}', 24)
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    enablePurgeProtection: true
  }
}

resource appPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'app-database-password'
  properties: { value: appDatabasePassword }
}

resource ownerPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'owner-database-password'
  properties: { value: databaseAdminPassword }
}
{%- if cookiecutter.auth in ["api_key", "both"] %}

resource apiKeyPepperSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'api-key-pepper'
  properties: { value: apiKeyPepper }
}
{%- endif %}

resource readSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, secretsUserRole)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUserRole)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${name}-env'
  location: location
  properties: {
    vnetConfiguration: { infrastructureSubnetId: '${network.id}/subnets/apps' }
    workloadProfiles: [ { name: 'Consumption', workloadProfileType: 'Consumption' } ]
    // Each JSON log line of the service becomes one Log Analytics row.
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: '${name}-db'
  location: location
  sku: {
    // db_size={{ cookiecutter.db_size }}: max_connections {{ budget.max_connections }}, {{ budget.reserved }} reserved by Azure (capacity.yaml)
    name: '{{ budget.instance }}'
    tier: '{{ tiers.get(budget.instance[:10], "") }}'
  }
  properties: {
    version: '17'
    administratorLogin: databaseAdminLogin
    administratorLoginPassword: databaseAdminPassword
    storage: { storageSizeGB: 64, autoGrow: 'Enabled' }
    backup: { backupRetentionDays: 7, geoRedundantBackup: 'Disabled' }
    highAvailability: { mode: 'Disabled' }
    network: {
      delegatedSubnetResourceId: '${network.id}/subnets/database'
      privateDnsZoneArmResourceId: databaseDns.id
      publicNetworkAccess: 'Disabled'
    }
  }
  dependsOn: [ databaseDnsLink ]
}

resource appDatabase 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: database
  name: databaseName
  properties: { charset: 'UTF8', collation: 'en_US.utf8' }
}

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: name
  location: location
  identity: { type: 'UserAssigned', userAssignedIdentities: { '${identity.id}': {} } }
  // Key Vault references resolve only once the identity may read the secrets.
  dependsOn: [ readSecrets ]
  properties: {
    managedEnvironmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      secrets: secrets
      registries: registries
      ingress: {
        external: true
        targetPort: 8000
        transport: 'http'
      }
    }
    template: {
      terminationGracePeriodSeconds: terminationGracePeriodSeconds
      containers: [
        {
          name: 'api'
          image: image
          env: environmentVariables
          resources: { cpu: json('1.0'), memory: '2Gi' }
          probes: [
            {
              type: 'Startup'
              httpGet: { path: '/health/live', port: 8000 }
              periodSeconds: 2
              failureThreshold: 30
            }
            {
              type: 'Liveness'
              httpGet: { path: '/health/live', port: 8000 }
              periodSeconds: 10
              failureThreshold: 3
            }
            {
              // Above database.ready_timeout_seconds (1.0), so a slow answer is
              // "not ready" from the service, not a probe timeout.
              type: 'Readiness'
              httpGet: { path: '/health/ready', port: 8000 }
              timeoutSeconds: 3
              periodSeconds: 5
              failureThreshold: 2
            }
          ]
        }
      ]
      scale: {
        minReplicas: {{ [2, replicas] | min }}
        // api_replicas: the maximum the connection budget was checked against.
        maxReplicas: {{ replicas }}
        rules: [
          {
            name: 'http-concurrency'
            http: { metadata: { concurrentRequests: '100' } }
          }
        ]
      }
    }
  }
}

{%- if cookiecutter.background_worker == "yes" %}
// The job worker: the API's image, its second entry point; no ingress. A fixed
// count (worker_replicas): the connection budget counts each replica's
// worker.pool.max_size + 1, and a new revision's replicas beside the old ones.
resource worker 'Microsoft.App/containerApps@2024-03-01' = {
  name: '${name}-worker'
  location: location
  identity: { type: 'UserAssigned', userAssignedIdentities: { '${identity.id}': {} } }
  dependsOn: [ readSecrets ]
  properties: {
    managedEnvironmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      secrets: secrets
      registries: registries
    }
    template: {
      // Above worker.graceful_shutdown_seconds (20): running jobs finish first.
      terminationGracePeriodSeconds: terminationGracePeriodSeconds
      containers: [
        {
          name: 'worker'
          image: image
          command: [ 'python', '-m', '{{ cookiecutter.package_name }}.worker' ]
          env: environmentVariables
          resources: { cpu: json('0.5'), memory: '1Gi' }
        }
      ]
      scale: {
        minReplicas: {{ cookiecutter.worker_replicas }}
        maxReplicas: {{ cookiecutter.worker_replicas }}
      }
    }
  }
}

{% endif %}
// Started by hand (az containerapp job start) once per release, before the app
// gets the new image; never part of a replica's start-up.
resource migration 'Microsoft.App/jobs@2024-03-01' = {
  name: '${name}-migrate'
  location: location
  identity: { type: 'UserAssigned', userAssignedIdentities: { '${identity.id}': {} } }
  // Key Vault references resolve only once the identity may read the secrets.
  dependsOn: [ readSecrets ]
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: 600
      replicaRetryLimit: 0
      manualTriggerConfig: { parallelism: 1, replicaCompletionCount: 1 }
      secrets: secrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'migrate'
          image: migrationImage
          command: [ 'sh', '-c', 'alembic upgrade head && python scripts/app_role.py' ]
          env: migrationVariables
          resources: { cpu: json('0.5'), memory: '1Gi' }
        }
      ]
    }
  }
}

output url string = 'https://${app.properties.configuration.ingress.fqdn}'
output migrationJob string = migration.name
output databaseHost string = database.properties.fullyQualifiedDomainName
