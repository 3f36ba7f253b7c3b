"""The spec: Argo's wire models, their problems, manifests and the CRDs generated from them.

Decides: the pydantic models of Rollout (analysis models live in analysis.model), which
fields Argo has that this controller refuses or ignores (`problems`), loading YAML
manifests with their file names, generating crds/ from the models, validating a document
against a CRD schema offline, and editing an image in a Git working copy (`gitops`).

May import: rollouts.platform, analysis (its models and checks).
"""
