"""MLflow "models from code" entry: MLflow runs this file to build the model, so nothing is pickled."""

from mlflow.models import set_model

from valgusml.export.pyfunc import ValgusPyfunc

set_model(ValgusPyfunc())
