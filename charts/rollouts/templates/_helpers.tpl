{{/* Names and labels shared by every template. */}}

{{- define "rollouts.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rollouts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rollouts.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rollouts.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "rollouts.labels" -}}
{{ include "rollouts.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "rollouts.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The metrics Service's name: Prometheus calls its scrape job by it (the alerts select on it). */}}
{{- define "rollouts.metricsServiceName" -}}
{{- printf "%s-metrics" (include "rollouts.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The API access the controller needs in the namespaces it watches, and nothing more. Each rule
names the code that makes the request; tests/chart/test_rbac.py runs the controller's scenarios
and checks that every request they make is granted here and that every grant here is used.
*/}}
{{- define "rollouts.namespacedRules" -}}
# The Rollout reconciler: watched into the cache, read again after a 409; status written (never spec).
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["argoproj.io"]
  resources: ["rollouts/status"]
  verbs: ["patch"]
# AnalysisRuns: created and terminated by the Rollout plan, deleted past the history limit,
# measured by the analysis controller (status only).
- apiGroups: ["argoproj.io"]
  resources: ["analysisruns"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["argoproj.io"]
  resources: ["analysisruns/status"]
  verbs: ["patch"]
# Experiments (experiment steps, and standalone ones): created and terminated by the Rollout
# plan, their status written by the Experiment reconciler (no status subresource, as Argo's CRD),
# deleted past the history limits.
- apiGroups: ["argoproj.io"]
  resources: ["experiments"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Templates are read from the watch cache only.
- apiGroups: ["argoproj.io"]
  resources: ["analysistemplates"]
  verbs: ["list", "watch"]
# The canary and stable ReplicaSets: created, scaled and annotated, deleted past revisionHistoryLimit.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# restartAt: the Rollout's pods are listed and deleted one at a time.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "delete"]
# The canary/stable, ping/pong and active/preview Services: their selector is set to a
# pod-template hash. An Experiment template's `service` is created and deleted with its pods.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# secretKeyRef args of an AnalysisTemplate.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Events on Rollouts and AnalysisRuns; a repeated one is counted up with a patch.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# Istio: the weights of the named routes and the DestinationRule's subsets (read again after a 409).
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices", "destinationrules"]
  verbs: ["get", "list", "watch", "patch"]
# Leader election: one Lease, replaced with the resourceVersion it was read at.
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}

{{/* Cluster-scoped: ClusterAnalysisTemplates are watched whatever the namespace scope. */}}
{{- define "rollouts.clusterRules" -}}
- apiGroups: ["argoproj.io"]
  resources: ["clusteranalysistemplates"]
  verbs: ["list", "watch"]
{{- end -}}
