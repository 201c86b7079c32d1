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

@description('PostgreSQL administrator login')
param databaseAdminLogin string = '{{ cookiecutter.package_name }}'

@secure()
@description('PostgreSQL administrator password (from your secret store; never committed)')
param databaseAdminPassword string

param databaseName string = '{{ cookiecutter.package_name }}'

var name = '{{ cookiecutter.project_slug }}'
// Above server.graceful_shutdown_seconds (20) so in-flight requests drain.
var terminationGracePeriodSeconds = 30
// Container Apps secrets: the app and the job read APP_DATABASE__URL from here.
var secrets = [
  {
    name: 'database-url'
    value: 'postgresql://${databaseAdminLogin}:${uriComponent(databaseAdminPassword)}@${database.properties.fullyQualifiedDomainName}:5432/${databaseName}'
  }
]
var environmentVariables = [
  { name: 'APP_ENVIRONMENT', value: 'production' }
  { name: 'APP_DATABASE__URL', secretRef: 'database-url' }
  // TLS to the server; libpq's variable, which asyncpg (and so alembic) honours.
  { name: 'PGSSLMODE', value: 'require' }
]

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
  }
}

resource appDatabase 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: database
  name: databaseName
  properties: { charset: 'UTF8', collation: 'en_US.utf8' }
}

// Lets Azure services (the Container Apps environment) reach the server.
resource allowAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: database
  name: 'allow-azure-services'
  properties: { startIpAddress: '0.0.0.0', endIpAddress: '0.0.0.0' }
}

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: name
  location: location
  properties: {
    managedEnvironmentId: environment.id
    configuration: {
      activeRevisionsMode: 'Single'
      secrets: secrets
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
              type: 'Readiness'
              httpGet: { path: '/health/ready', port: 8000 }
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

// Started by hand (az containerapp job start) once per release, before the app
// gets the new image; never part of a replica's start-up.
resource migration 'Microsoft.App/jobs@2024-03-01' = {
  name: '${name}-migrate'
  location: location
  properties: {
    environmentId: environment.id
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: 600
      replicaRetryLimit: 0
      manualTriggerConfig: { parallelism: 1, replicaCompletionCount: 1 }
      secrets: secrets
    }
    template: {
      containers: [
        {
          name: 'migrate'
          image: migrationImage
          command: [ 'alembic', 'upgrade', 'head' ]
          env: environmentVariables
          resources: { cpu: json('0.5'), memory: '1Gi' }
        }
      ]
    }
  }
}

output url string = 'https://${app.properties.configuration.ingress.fqdn}'
output migrationJob string = migration.name
output databaseHost string = database.properties.fullyQualifiedDomainName
