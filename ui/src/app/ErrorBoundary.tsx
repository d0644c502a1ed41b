// Keeps one crashing panel from taking the others down: it shows an error box in its place.
import { Component, type ReactNode } from "react";

interface Props {
  name: string;
  children: ReactNode;
}

export class ErrorBoundary extends Component<Props, { error: Error | null }> {
  override state: { error: Error | null } = { error: null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  override render() {
    if (this.state.error) {
      return (
        <div className="panel-error" role="alert" data-testid="panel-error">
          <strong>{this.props.name} stopped working.</strong> <span>{this.state.error.message}</span>{" "}
          <button type="button" onClick={() => this.setState({ error: null })}>
            Try again
          </button>
        </div>
      );
    }
    return this.props.children;
  }
}
