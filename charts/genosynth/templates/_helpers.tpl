{{/* Common labels of every object of the release. */}}
{{- define "genosynth.labels" -}}
app.kubernetes.io/name: genosynth
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Name of the ServiceAccount the workflow pods run as. */}}
{{- define "genosynth.serviceAccountName" -}}
{{- .Values.serviceAccount.name -}}
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
Workflow parameters the chart sets from values (the rendered file in files/workflows/ holds the DAG;
the chart only fills in defaults that depend on the installation).
*/}}
{{- define "genosynth.workflowParameters" -}}
image-cpu: {{ include "genosynth.imageCpu" . | quote }}
image-gpu: {{ include "genosynth.imageGpu" . | quote }}
dataset-url: {{ .Values.storage.datasetUrl | quote }}
run-url: {{ printf "%s/runs/{{workflow.name}}" (trimSuffix "/" .Values.storage.bucketUrl) | quote }}
config: {{ include "genosynth.runConfig" . | quote }}
spot: {{ .Values.gpu.spot | toString | quote }}
batch-group-size: {{ .Values.pipeline.batchGroupSize | toString | quote }}
pushgateway: {{ .Values.metrics.pushgatewayUrl | quote }}
{{- end -}}
