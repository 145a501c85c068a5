{{/* Common labels of every object of the release. */}}
{{- define "genosynth.labels" -}}
app.kubernetes.io/name: genosynth
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
ServiceAccounts the rendered WorkflowTemplate names (fixed by the rendering, see runners/argo.py): the
steps', the input readers' (configure, prep) and the Argo executor's.
*/}}
{{- define "genosynth.serviceAccountName" -}}
genosynth
{{- end -}}
{{- define "genosynth.inputServiceAccountName" -}}
genosynth-input
{{- end -}}
{{- define "genosynth.executorServiceAccountName" -}}
genosynth-executor
{{- end -}}

{{/* Image references of the two step images. */}}
{{- define "genosynth.imageCpu" -}}
{{- printf "%s:%s" .Values.image.cpu.repository .Values.image.cpu.tag -}}
{{- end -}}
{{- define "genosynth.imageGpu" -}}
{{- printf "%s:%s" .Values.image.gpu.repository .Values.image.gpu.tag -}}
{{- end -}}

{{/* The run configuration every submitted run starts from: budget, prices and extra keys, as JSON. */}}
{{- define "genosynth.runConfig" -}}
{{- $config := deepCopy .Values.pipeline.config -}}
{{- $_ := set $config "budget_dollars" .Values.cost.budgetDollars -}}
{{- $_ := set $config "prices" .Values.cost.prices -}}
{{- toJson $config -}}
{{- end -}}

{{/*
The default of every workflow parameter, from values (the rendered file in files/workflows/ holds the
DAG; the chart fills in only these, and fails on a parameter missing here).
*/}}
{{- define "genosynth.workflowParameters" -}}
image-cpu: {{ include "genosynth.imageCpu" . | quote }}
image-gpu: {{ include "genosynth.imageGpu" . | quote }}
dataset-url: {{ .Values.storage.datasetUrl | quote }}
run-url: {{ printf "%s/runs/{{workflow.name}}" (trimSuffix "/" .Values.storage.bucketUrl) | quote }}
config: {{ include "genosynth.runConfig" . | quote }}
gpu-kind: {{ .Values.gpu.deviceKind | quote }}
spot: {{ .Values.gpu.spot | toString | quote }}
batch-group-size: {{ .Values.pipeline.batchGroupSize | toString | quote }}
pushgateway: {{ .Values.metrics.pushgatewayUrl | quote }}
{{- end -}}

{{/*
The Kubernetes API endpoint(s) the step pods' Argo executor reaches, as YAML {source, cidrs, ports}:
networkPolicy.kubernetesApiCidr when set; else looked up in the cluster at install/upgrade (the
`kubernetes` EndpointSlice in `default` gives the apiserver addresses and port, its Service the
ClusterIP); else (`helm template`, GitOps renderers: no cluster to ask) none, and NOTES says so.
*/}}
{{- define "genosynth.kubernetesApi" -}}
{{- $policy := .Values.networkPolicy -}}
{{- $cidrs := list -}}
{{- $ports := list -}}
{{- $source := "none" -}}
{{- if $policy.kubernetesApiCidr -}}
{{- $cidrs = list $policy.kubernetesApiCidr -}}
{{- $ports = list $policy.kubernetesApiPort -}}
{{- $source = "value" -}}
{{- else -}}
{{- $service := lookup "v1" "Service" "default" "kubernetes" -}}
{{- $slice := lookup "discovery.k8s.io/v1" "EndpointSlice" "default" "kubernetes" -}}
{{- if $service -}}
{{- range $endpoint := ($slice.endpoints | default list) -}}
{{- range $address := $endpoint.addresses -}}
{{- $cidrs = append $cidrs (printf "%s/%s" $address (ternary "128" "32" (contains ":" $address))) -}}
{{- end -}}
{{- end -}}
{{- range $port := ($slice.ports | default list) -}}
{{- $ports = append $ports (int $port.port) -}}
{{- end -}}
{{- if not $cidrs -}}
{{- fail "networkPolicy: the cluster has no readable `kubernetes` EndpointSlice in `default`: set networkPolicy.kubernetesApiCidr (and kubernetesApiPort)" -}}
{{- end -}}
{{- with $service.spec.clusterIP -}}
{{- $cidrs = append $cidrs (printf "%s/%s" . (ternary "128" "32" (contains ":" .))) -}}
{{- end -}}
{{- range $port := $service.spec.ports -}}
{{- $ports = append $ports (int $port.port) -}}
{{- end -}}
{{- $source = "lookup" -}}
{{- end -}}
{{- end -}}
source: {{ $source }}
cidrs: {{ $cidrs | uniq | toJson }}
ports: {{ $ports | uniq | toJson }}
{{- end -}}
