"ftbook.loss on the real model: SmolLM2-135M-Instruct in 4 bits with a LoRA adapter, under bfloat16 autocast as in training, gives the loss and the gradients of the model's own loss."
import torch
from ftbook.data import PromptTemplate, collate, make_pairs, pack_examples, tokenize_pairs
from ftbook.loss import completion_loss, loss_for
from ftbook.quant import load_model
from ftbook.layout import cpu_inference_repacking
from ftbook.testing import random_lora

NOTES = [dict(note=f'Patient {i} reports a cough for {i+2} days, no fever. Lungs clear. Temperature 37.{i} C.',
              summary=f'Complaint: cough, {i+2} days.\nFindings: lungs clear, afebrile (37.{i} C).\nPlan: fluids, review in one week.') for i in range(6)]

def lora_model():
    "SmolLM2 in 4 bits with LoRA on every linear layer, its B matrices random so that the adapter changes the output."
    model, tok = load_model()
    cpu_inference_repacking(model, False)  # the training layout, as in a run
    return random_lora(model, r=8, std=0.01), tok

def loss_and_grad(model, loss_fn):
    model.zero_grad()
    with torch.autocast('cpu', dtype=torch.bfloat16): loss = loss_fn()
    loss.backward()
    return loss.item(), torch.cat([p.grad.float().flatten() for p in model.parameters() if p.requires_grad])

def test_same_loss_and_gradients_as_the_model_on_smollm2():
    model, tok = lora_model()
    template = PromptTemplate('Summarize the note.\n{note}', '{summary}')
    examples = tokenize_pairs(make_pairs(NOTES, template), tok, template)['examples']
    for batch in (collate(examples, tok.pad_token_id), collate(pack_examples(examples, 256), tok.pad_token_id)):
        own, own_grad = loss_and_grad(model, lambda: model(**batch).loss)
        def ours(): total, n = completion_loss(model, batch); return total / n
        loss, grad = loss_and_grad(model, ours)
        assert abs(loss - own) <= 1e-3 * own, (loss, own)
        # bfloat16 gradients carry ~3 significant digits; both paths round at different places
        assert (grad - own_grad).norm() <= 2e-2 * own_grad.norm() and torch.cosine_similarity(grad, own_grad, 0) > 0.999
        assert loss_for(model, batch) is completion_loss

def test_chunk_size_does_not_change_the_result():
    model, tok = lora_model()
    template = PromptTemplate('{note}', '{summary}')
    batch = collate(tokenize_pairs(make_pairs(NOTES, template), tok, template)['examples'], tok.pad_token_id)
    (l1, g1), (l2, g2) = [loss_and_grad(model, lambda: completion_loss(model, batch, chunk_rows=rows)[0]) for rows in (17, None)]
    assert abs(l1 - l2) <= 1e-5 * l2 and (g1 - g2).norm() <= 1e-3 * g2.norm()
